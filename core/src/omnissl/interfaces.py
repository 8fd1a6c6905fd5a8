"""The three interfaces every modality implements: encoders, view generators and objectives.

A *batch* is whatever a data source yields after collation (a tensor, a mapping, a dataclass, a PyG
``Batch``). The engine only moves it to the device (:func:`omnissl.device.move_to_device`). Labels never
reach an objective: data sources keep them apart, for probes and evaluators only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn


@dataclass
class Encoded:
    """What an encoder returns.

    Attributes:
        pooled: one vector per sample, ``(B, D)`` (per node for node-level graph tasks).
        tokens: per-token outputs ``(B, N, D)`` for token-based encoders, else ``None``.
        padding_mask: ``(B, N)`` bool, ``True`` where a token is padding; ``None`` when nothing is padded.
        layers: optional per-layer token outputs (for layer-wise probing and HuBERT-style targets).
    """

    pooled: Tensor
    tokens: Tensor | None = None
    padding_mask: Tensor | None = None
    layers: list[Tensor] | None = None


class Encoder(nn.Module):
    """Base class of encoders: ``forward(batch, keep=None) -> Encoded``.

    ``keep`` is an optional ``(B, K)`` long tensor of token positions to encode (MAE and JEPA encode only
    a subset of tokens); encoders that have no tokens ignore it or raise. Subclasses set ``output_dim``.
    """

    output_dim: int

    def forward(self, batch: Any, keep: Tensor | None = None) -> Encoded:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass
class Views:
    """The output of a view generator.

    Attributes:
        inputs: one encoder-ready batch per view (two for SimCLR-style methods, one for masked methods).
        original: the unaltered batch, for reconstruction targets and teachers that see the full input.
        info: whatever the objective needs about the views: masks, kept and target indices, mixing
            coefficients, edit distances. Keys are documented by each view generator.
    """

    inputs: list[Any]
    original: Any = None
    info: dict[str, Any] = field(default_factory=dict)


class ViewGenerator(nn.Module):
    """Base class of view generators: ``forward(batch, generator) -> Views``.

    Runs on the device, batched, and draws every random number from the explicit ``generator`` so that
    views are reproducible under a seed. View generators may hold learnable parameters (a [MASK] token).
    """

    def forward(self, batch: Any, generator: torch.Generator) -> Views:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass
class ObjectiveOutput:
    """A scalar ``loss`` to minimise and ``logs``: detached scalar tensors read at log intervals only."""

    loss: Tensor
    logs: dict[str, Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class Progress:
    """Where the run is: ``step`` done of ``total_steps``; ``fraction`` is in ``[0, 1]``."""

    step: int
    total_steps: int

    @property
    def fraction(self) -> float:
        return min(1.0, self.step / max(1, self.total_steps))


class Objective(nn.Module):
    """Base class of objectives: ``forward(encoder, views) -> ObjectiveOutput``.

    An objective owns every head it needs (projector, predictor, decoder, prototypes, quantizer) and any
    teacher (an EMA copy of the encoder made with :class:`omnissl.nn.EMATeacher`, excluded from the
    optimizer). ``after_step`` runs after each optimizer step to update teachers and schedules.
    """

    def forward(self, encoder: Encoder, views: Views) -> ObjectiveOutput:  # pragma: no cover - interface
        raise NotImplementedError

    def after_step(self, progress: Progress) -> None:
        """Update teachers and schedules; the default does nothing."""


@runtime_checkable
class DataSource(Protocol):
    """What a registered dataset factory returns.

    Samples are addressed by integer index; the engine draws shuffled index batches (sharded across
    processes) and asks the source to collate them. Sources whose data fit in memory move it to the
    device once with ``to``; then ``batch`` is a gather on the device.

    Required:
        ``__len__``: number of samples (1 for a single full graph trained full-batch).
        ``batch(indices)``: the collated batch for a 1-D long tensor of indices.
        ``to(device)``: move resident data; returns ``self``.
    Optional attributes used by probes and evaluators:
        ``labels``: ``dict[str, Tensor]`` of per-sample (or per-node) targets.
        ``splits``: ``dict[str, Tensor]`` of index tensors (``train``/``val``/``test``).
        ``surface_features()``: the raw-feature baseline representation, ``(num_samples, F)``.
        ``gather(indices)``: the batch of samples by their label index, for sources whose ``batch``
            addresses a pretraining subset (the train split) rather than every labelled sample.
        ``describe()``: one line saying what was loaded, printed at the start of a run.
    """

    def __len__(self) -> int: ...

    def batch(self, indices: Tensor) -> Any: ...

    def to(self, device: torch.device) -> DataSource: ...
