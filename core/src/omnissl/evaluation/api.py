"""What evaluators receive and return.

An evaluator is any callable ``evaluator(run: EvalRun) -> EvalResult`` built by a registered
:class:`omnissl.specs.EvaluatorSpec` factory. The engine calls evaluators at ``eval.every`` steps and at the
end of a run; ``omnissl probe`` calls them on a checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from omnissl.interfaces import DataSource, Encoder


@dataclass
class EvalRun:
    """Everything an evaluator may use.

    Attributes:
        encoder: the live (or loaded) encoder; evaluators switch it to eval mode and back.
        data: the task's data source, on ``device``; ``data.labels`` and ``data.splits`` hold targets.
        device: where to compute.
        random_encoder: builds a freshly initialised encoder of the same config (the random baseline).
        seed: base seed; probes add their repetition index.
        step: the training step this evaluation belongs to.
        task: the task's name.
    """

    encoder: Encoder
    data: DataSource
    device: torch.device
    random_encoder: Callable[[], Encoder]
    seed: int = 0
    step: int = 0
    task: str = "main"


@dataclass
class EvalResult:
    """``metrics``: flat scalars logged to JSONL; ``rows``: a table to print (one dict per row)."""

    name: str
    metrics: dict[str, float] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
