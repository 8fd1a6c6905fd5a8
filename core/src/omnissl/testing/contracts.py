"""Contract checks every registered spec must pass (the timm/transformers "one suite over every model" rule).

Each check raises ``AssertionError`` with the spec's name and what went wrong. Plugin authors run
:func:`check_plugin` over their plugin in one test; the core's suite runs it over every installed plugin.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from omnissl.device import move_to_device
from omnissl.interfaces import Encoded, ObjectiveOutput, Views
from omnissl.plugins import PluginManager
from omnissl.specs import BuildContext, ComponentSpec, ModalitySpec


def _tensors(obj: Any) -> list[Tensor]:
    """Every tensor inside a nested batch/views structure, in a stable order."""
    if isinstance(obj, Tensor):
        return [obj]
    if isinstance(obj, Views):
        return _tensors(obj.inputs) + _tensors(obj.info)
    if isinstance(obj, dict):
        return [t for k in sorted(obj, key=str) for t in _tensors(obj[k])]
    if isinstance(obj, (list, tuple)):
        return [t for v in obj for t in _tensors(v)]
    if hasattr(obj, "to_dict"):  # PyG Data/Batch
        return _tensors(obj.to_dict())
    if hasattr(obj, "__dataclass_fields__"):
        return [t for f in obj.__dataclass_fields__ for t in _tensors(getattr(obj, f))]
    return []


def _context(modality: ModalitySpec) -> BuildContext:
    return BuildContext(data=modality.example_data() if modality.example_data else None)


def check_config_roundtrip(spec: ComponentSpec) -> None:
    """The default config validates, dumps to JSON and validates back to an equal object; it has a schema."""
    default = spec.config()
    again = spec.config.model_validate_json(default.model_dump_json())
    assert again == default, f"{spec.name}: config does not round-trip through JSON ({default!r} != {again!r})"
    schema = spec.config.model_json_schema()
    assert schema.get("additionalProperties") is False, f"{spec.name}: config must forbid unknown keys"


def check_encoder(spec: ComponentSpec, modality: ModalitySpec) -> None:
    """Forward on ``example_batch()`` gives finite ``(B, D)`` pooled output; backward reaches every parameter."""
    torch.manual_seed(0)
    encoder = spec.build({}, _context(modality))
    out = encoder(modality.example_batch())
    assert isinstance(out, Encoded), f"{spec.name}: forward must return Encoded, got {type(out).__name__}"
    assert out.pooled.dim() == 2 and out.pooled.shape[1] == encoder.output_dim, (
        f"{spec.name}: pooled must be (B, output_dim={encoder.output_dim}), got {tuple(out.pooled.shape)}"
    )
    assert torch.isfinite(out.pooled).all(), f"{spec.name}: pooled output is not finite"
    out.pooled.float().pow(2).mean().backward()
    missing = [n for n, p in encoder.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"{spec.name}: no gradient reaches {missing} from the pooled output"


def check_view_determinism(spec: ComponentSpec, modality: ModalitySpec) -> None:
    """The same seed gives identical views; another seed gives different ones."""
    views = spec.build({}, _context(modality))

    def make(seed: int) -> list[Tensor]:
        return _tensors(views(modality.example_batch(), torch.Generator().manual_seed(seed)))

    a, b, c = make(0), make(0), make(1)
    assert a, f"{spec.name}: views contain no tensors"
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True)), (
        f"{spec.name}: views differ under the same seed. Draw every random number from the generator passed "
        f"to the view generator, and make {modality.name}'s example_batch() deterministic (seed its own draws)"
    )
    assert any(x.shape != z.shape or not torch.equal(x, z) for x, z in zip(a, c)), f"{spec.name}: views ignore the generator"


def check_objective(spec: ComponentSpec, modality: ModalitySpec, encoder_name: str, views_name: str, registry) -> None:
    """Finite loss; gradients reach every trainable parameter of the encoder and the objective."""
    torch.manual_seed(0)
    ctx = _context(modality)
    encoder = registry.get("encoders", encoder_name).build({}, ctx)
    ctx.encoder = encoder
    views = registry.get("view_generators", views_name).build({}, ctx)
    objective = spec.build({}, ctx)
    out = objective(encoder, views(modality.example_batch(), torch.Generator().manual_seed(0)))
    assert isinstance(out, ObjectiveOutput), f"{spec.name}: forward must return ObjectiveOutput"
    assert out.loss.dim() == 0 and torch.isfinite(out.loss), f"{spec.name}: loss must be a finite scalar, got {out.loss}"
    out.loss.backward()
    params = [(f"encoder.{n}", p) for n, p in encoder.named_parameters()]
    params += [(f"objective.{n}", p) for n, p in objective.named_parameters()]
    params += [(f"views.{n}", p) for n, p in views.named_parameters()]
    missing = [n for n, p in params if p.requires_grad and p.grad is None]
    assert not missing, f"{spec.name} on {encoder_name} + {views_name}: no gradient reaches {missing}"


def check_source(source: Any, name: str) -> None:
    """The data-source protocol (:class:`omnissl.interfaces.DataSource`) holds on a built source.

    ``len`` is positive; ``batch`` of the same indices is identical twice; ``to`` returns the source;
    ``labels`` are tensors, ``splits`` 1-D integer index tensors that stay inside the labelled range;
    ``describe()``, where defined, is a non-empty line.
    """
    n = len(source)
    assert isinstance(n, int) and n > 0, f"{name}: len(source) must be a positive int, got {n!r}"
    index = torch.arange(min(n, 4))
    first, again = _tensors(source.batch(index)), _tensors(source.batch(index))
    assert first, f"{name}: batch(indices) contains no tensors"
    assert all(torch.equal(x, y) for x, y in zip(first, again, strict=True)), f"{name}: batch() of the same indices differs between calls"
    assert source.to(torch.device("cpu")) is source, f"{name}: to(device) must move the data and return the source itself"
    labels = getattr(source, "labels", {}) or {}
    assert isinstance(labels, dict) and all(isinstance(v, Tensor) for v in labels.values()), (
        f"{name}: labels must be a dict of tensors (one entry per label set), got {type(labels).__name__}"
    )
    sizes = {v.shape[0] for v in labels.values()}
    for split, idx in (getattr(source, "splits", {}) or {}).items():
        assert isinstance(idx, Tensor) and idx.dim() == 1 and not idx.is_floating_point(), f"{name}: splits[{split!r}] must be a 1-D index tensor"
        if idx.numel() and sizes:
            assert 0 <= int(idx.min()) and int(idx.max()) < min(sizes), f"{name}: splits[{split!r}] indexes past the labels"
    describe = getattr(source, "describe", None)
    if describe is not None:
        line = describe()
        assert isinstance(line, str) and line.strip(), f"{name}: describe() must return a one-line summary of what was loaded"


def check_dataset(spec: ComponentSpec, folder: Path) -> None:
    """The dataset builds from the files its ``example`` writes into ``folder`` and gives a valid source."""
    assert getattr(spec, "example", None) is not None, (
        f"{spec.name}: DatasetSpec has no example. Give it example=lambda folder: <params>, writing a tiny input "
        "in the format the loader reads into folder, so the contract suite can build and check it"
    )
    folder.mkdir(parents=True, exist_ok=True)
    params = spec.example(folder)
    check_source(spec.build(params, BuildContext()), spec.name)


def check_evaluator(spec: ComponentSpec, modality: ModalitySpec, encoder_name: str, registry) -> None:
    """The evaluator runs on the modality's example data with a random encoder and returns finite metrics."""
    from omnissl.evaluation.api import EvalResult, EvalRun

    assert modality.example_data is not None, f"{modality.name}: evaluator checks need example_data() with labels and splits"
    data = modality.example_data()
    ctx = BuildContext(data=data)

    def encoder(seed: int):
        torch.manual_seed(seed)
        return registry.get("encoders", encoder_name).build({}, ctx)

    run = EvalRun(encoder=encoder(0), data=data, device=torch.device("cpu"), random_encoder=lambda: encoder(1), task="contract")
    result = spec.build({}, ctx)(run)
    assert isinstance(result, EvalResult), f"{spec.name}: an evaluator must return EvalResult, got {type(result).__name__}"
    assert result.metrics, f"{spec.name}: EvalResult.metrics is empty"
    bad = {k: v for k, v in result.metrics.items() if not (isinstance(v, (int, float)) and math.isfinite(v))}
    assert not bad, f"{spec.name}: metrics must be finite numbers, got {bad}"


def modality_cases(pm: PluginManager, plugin: str | None = None, folder: Path | None = None) -> Iterable[tuple[str, Any, tuple]]:
    """``(check name, function, args)`` for every spec of ``plugin`` (or of every plugin).

    Dataset examples write their files under ``folder`` (default: a fresh temporary folder).
    """
    registry = pm.registry
    folder = folder or Path(tempfile.mkdtemp(prefix="omnissl-contracts-"))
    for modality in registry.specs["modalities"].values():
        if plugin is not None and modality.provider.plugin != plugin:
            continue
        for enc in modality.encoders:
            yield f"encoder[{enc}]", check_encoder, (registry.get("encoders", enc), modality)
        for v in modality.views:
            yield f"views[{v}]", check_view_determinism, (registry.get("view_generators", v), modality)
        for obj in modality.objectives:
            enc, v = modality.objective_pairs.get(obj, (modality.encoders[0], modality.views[0]))
            yield f"objective[{obj}]", check_objective, (registry.get("objectives", obj), modality, enc, v, registry)
        for ev in modality.evaluators:
            yield f"evaluator[{ev}]", check_evaluator, (registry.get("evaluators", ev), modality, modality.encoders[0], registry)
    for spec in registry.specs["datasets"].values():
        # every dataset, example or not: check_dataset fails on a missing example and says how to write one
        if plugin is None or spec.provider.plugin == plugin:
            yield f"dataset[{spec.name}]", check_dataset, (spec, folder / spec.name)
    for kind in ("datasets", "encoders", "view_generators", "objectives", "evaluators", "callbacks"):
        for spec in registry.specs[kind].values():
            if plugin is None or spec.provider.plugin == plugin:
                yield f"config[{spec.name}]", check_config_roundtrip, (spec,)


def check_plugin(pm: PluginManager, plugin: str) -> list[str]:
    """Run every contract check for ``plugin``; return the names of the checks run (fails on the first)."""
    ran = []
    for name, check, args in modality_cases(pm, plugin):
        check(*args)
        ran.append(name)
    assert ran, f"plugin {plugin!r} registered nothing to check"
    return ran


__all__ = ["check_config_roundtrip", "check_dataset", "check_encoder", "check_evaluator", "check_objective", "check_plugin",
           "check_source", "check_view_determinism", "modality_cases", "move_to_device"]
