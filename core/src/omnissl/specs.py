"""Typed, frozen, keyword-only records that plugins yield from the registration hooks.

Every spec has a globally unique ``name`` (``"<domain>.<thing>"``, lowercase), a ``factory``, a ``config``
(a pydantic model with ``extra="forbid"`` whose fields are the component's parameters) and a one-line
``summary``. The plugin manager fills in ``provider``; plugins never set it.

Factories are called as ``factory(config, ctx)`` with the validated config instance and a
:class:`BuildContext`; they return the component.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*\.[a-z0-9_.]+$")


class ComponentConfig(BaseModel):
    """Base class for component config models: unknown keys are rejected, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=True)


class NoConfig(ComponentConfig):
    """For components without parameters."""


@dataclass(frozen=True, kw_only=True)
class Provider:
    """Which installed distribution (or in-process plugin) provided a component."""

    plugin: str
    distribution: str
    version: str


@dataclass(kw_only=True)
class BuildContext:
    """What a factory may use to build its component.

    Attributes:
        data: the task's data source (for encoders that size themselves from a schema), or ``None``.
        encoder: the task's encoder (for objectives that size heads from ``encoder.output_dim``), or ``None``.
        shared: shared modules by name (``shared:`` block of a run config), built before the tasks.
        seed: the run's seed.
    """

    data: Any = None
    encoder: Any = None
    shared: dict[str, Any] = field(default_factory=dict)
    seed: int = 0

    def resolve_shared(self, value: Any) -> Any:
        """Return the shared module for an ``"@shared.NAME"`` reference, or ``value`` unchanged."""
        if isinstance(value, str) and value.startswith("@shared."):
            return self.shared[value.removeprefix("@shared.")]
        return value


@dataclass(frozen=True, kw_only=True)
class ComponentSpec:
    """Fields shared by every registered component."""

    kind: ClassVar[str] = "component"
    name: str
    factory: Callable[[Any, BuildContext], Any]
    config: type[BaseModel] = NoConfig
    summary: str = ""
    provider: Provider | None = None

    def __post_init__(self) -> None:
        if not NAME_PATTERN.match(self.name):
            raise ValueError(
                f"{self.kind} name {self.name!r} must look like '<domain>.<thing>' in lowercase "
                "(letters, digits, '_' and '.'), for example 'graph.gat'"
            )
        if not (isinstance(self.config, type) and issubclass(self.config, BaseModel)):
            raise TypeError(f"{self.kind} {self.name!r}: config must be a pydantic model class")
        if self.config.model_config.get("extra") != "forbid":
            raise TypeError(
                f"{self.kind} {self.name!r}: config model {self.config.__name__} must set extra='forbid' "
                "(subclass omnissl.specs.ComponentConfig)"
            )

    def build(self, params: dict[str, Any], ctx: BuildContext) -> Any:
        """Validate ``params`` against ``config`` and call the factory."""
        return self.factory(self.config.model_validate(params), ctx)


@dataclass(frozen=True, kw_only=True)
class ModalitySpec:
    """A modality: a batch schema and an example batch for contract tests.

    ``example_batch()`` returns a small collated batch on the CPU and must be deterministic (seed every
    random draw it makes: the contract suite compares views of two calls under one seed).
    ``example_data()`` returns a small data source with ``labels`` and ``splits`` (needed by encoders that
    size themselves from the data, and by the evaluator checks). ``encoders`` names the encoders that
    accept the batch, ``views`` the view generators, ``objectives`` the objectives meant to train on it
    (``objective_pairs`` gives the encoder and views each objective is checked with; default the first of
    each), and ``evaluators`` the evaluators that run on it, so the contract suite can exercise every
    combination the plugin supports.
    """

    kind: ClassVar[str] = "modality"
    name: str
    summary: str
    example_batch: Callable[[], Any]
    example_data: Callable[[], Any] | None = None
    encoders: tuple[str, ...] = ()
    views: tuple[str, ...] = ()
    objectives: tuple[str, ...] = ()
    objective_pairs: dict[str, tuple[str, str]] = field(default_factory=dict)
    evaluators: tuple[str, ...] = ()
    provider: Provider | None = None

    def __post_init__(self) -> None:
        if not NAME_PATTERN.match(self.name):
            raise ValueError(f"modality name {self.name!r} must look like '<domain>.<thing>'")


@dataclass(frozen=True, kw_only=True)
class DatasetSpec(ComponentSpec):
    """A data source factory: ``factory(config, ctx) -> DataSource``; ``modality`` names its batch schema.

    ``example(folder) -> params``: writes whatever files a tiny instance of this source reads into
    ``folder`` (a real file in the format users have: a CSV, a folder of WAVs, a raw benchmark layout) and
    returns the config parameters that read them. The contract suite builds the source from it and checks
    the source protocol; a dataset without an example is not checked (``check_dataset`` called on one fails
    and says what to add).
    """

    kind: ClassVar[str] = "dataset"
    modality: str = ""
    example: Callable[[Path], dict[str, Any]] | None = None


@dataclass(frozen=True, kw_only=True)
class EncoderSpec(ComponentSpec):
    """An encoder factory: ``factory(config, ctx) -> Encoder``.

    ``hf_export(encoder, directory, objective) -> Path`` (optional): write the run's trained ``encoder`` as
    a local HF transformers checkpoint in ``directory`` that ``transformers.AutoModel.from_pretrained``
    loads with equal outputs; ``objective`` is the task's objective, for what the HF class keeps beside
    the encoder (wav2vec 2.0's mask embedding). ``omnissl export --format hf`` calls it; an encoder
    without one has no HF counterpart. Raise an :class:`~omnissl.errors.OmnisslError` saying why when a
    particular configuration cannot be expressed. Example (the speech plugin)::

        EncoderSpec(name="speech.wav2vec2", config=Wav2Vec2Config, factory=wav2vec2_encoder, hf_export=hf.export_hf)
    """

    kind: ClassVar[str] = "encoder"
    hf_export: Callable[[Any, Path, Any], Path] | None = None


@dataclass(frozen=True, kw_only=True)
class ViewGeneratorSpec(ComponentSpec):
    """A view generator factory: ``factory(config, ctx) -> ViewGenerator``."""

    kind: ClassVar[str] = "view_generator"


@dataclass(frozen=True, kw_only=True)
class ObjectiveSpec(ComponentSpec):
    """An objective factory: ``factory(config, ctx) -> Objective``; ``ctx.encoder`` is the task's encoder."""

    kind: ClassVar[str] = "objective"


@dataclass(frozen=True, kw_only=True)
class EvaluatorSpec(ComponentSpec):
    """An evaluator factory: ``factory(config, ctx) -> Evaluator`` (see :mod:`omnissl.evaluation.api`)."""

    kind: ClassVar[str] = "evaluator"


@dataclass(frozen=True, kw_only=True)
class CallbackSpec(ComponentSpec):
    """A callback factory: ``factory(config, ctx) -> Callback`` with ``on_log(step, metrics)`` and ``on_end(step)``,
    and optionally ``on_start(config: dict, out_dir: Path)`` (the run config as plain data). All run on rank 0,
    on the host, at log intervals and evaluations, never inside the step."""

    kind: ClassVar[str] = "callback"


SPEC_TYPES: dict[str, type] = {
    "modalities": ModalitySpec,
    "datasets": DatasetSpec,
    "encoders": EncoderSpec,
    "view_generators": ViewGeneratorSpec,
    "objectives": ObjectiveSpec,
    "evaluators": EvaluatorSpec,
    "callbacks": CallbackSpec,
}


def iter_fields(model: type[BaseModel]) -> Iterator[tuple[str, Any, Any]]:
    """Yield ``(name, annotation, default)`` for each field of a config model (docs and listings)."""
    for name, info in model.model_fields.items():
        yield name, info.annotation, info.get_default(call_default_factory=True)
