"""Contract checks every registered spec must pass (the timm/transformers "one suite over every model" rule).

Each check raises ``AssertionError`` with the spec's name and what went wrong. Plugin authors run
:func:`check_plugin` over their plugin in one test; the core's suite runs it over every installed plugin.
"""

from __future__ import annotations

from collections.abc import Iterable
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
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True)), f"{spec.name}: views differ under the same seed"
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


def modality_cases(pm: PluginManager, plugin: str | None = None) -> Iterable[tuple[str, Any, tuple]]:
    """``(check name, function, args)`` for every spec of ``plugin`` (or of every plugin)."""
    registry = pm.registry
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


__all__ = ["check_config_roundtrip", "check_encoder", "check_objective", "check_plugin", "check_view_determinism", "modality_cases", "move_to_device"]
