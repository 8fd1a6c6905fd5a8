"""Learning-rate schedules as multipliers of the base learning rate, for ``torch.optim.lr_scheduler.LambdaLR``.

- ``cosine``: linear warmup, then cosine decay to ``min_lr_ratio`` (Loshchilov & Hutter 2017).
- ``wsd``: warmup-stable-decay: linear warmup, constant, then a decay over the last ``decay_fraction`` of
  training to ``min_lr_ratio`` (Hu et al. 2024, MiniCPM; Hägele et al. 2024).
- ``infinite``: the infinite schedule of "Beyond Cosine Decay" (Singh et al. 2025, after Ibrahim et al.
  2024): linear warmup, cosine cooldown to ``constant_lr_ratio`` over ``cooldown_steps``, a constant phase
  that can run indefinitely, and a linear annealing to ``min_lr_ratio`` over the last ``anneal_steps``.
- ``constant``: linear warmup, then 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

from pydantic import Field, model_validator

from omnissl.specs import ComponentConfig


class ScheduleConfig(ComponentConfig):
    """Schedule settings (fields a schedule does not use are ignored).

    Attributes:
        name: ``cosine`` (default), ``wsd``, ``infinite`` or ``constant``.
        warmup_steps: linear warmup length (default 0); ``warmup_fraction`` sets it as a share of the run.
        min_lr_ratio: final multiplier (default 0.0).
        decay_fraction: ``wsd`` decay share of the run (default 0.2).
        decay_shape: ``wsd`` decay shape, ``linear``, ``cosine`` or ``sqrt`` (1 - sqrt; default ``sqrt``).
        cooldown_steps: ``infinite`` cooldown length after warmup (default 0 = 10% of the run).
        constant_lr_ratio: ``infinite`` plateau multiplier (default 0.25).
        anneal_steps: ``infinite`` final annealing length (default 0 = 10% of the run).
    """

    name: Literal["cosine", "wsd", "infinite", "constant"] = "cosine"
    warmup_steps: int = Field(0, ge=0)
    warmup_fraction: float | None = Field(None, ge=0, lt=1)
    min_lr_ratio: float = Field(0.0, ge=0, le=1)
    decay_fraction: float = Field(0.2, gt=0, le=1)
    decay_shape: Literal["linear", "cosine", "sqrt"] = "sqrt"
    cooldown_steps: int = Field(0, ge=0)
    constant_lr_ratio: float = Field(0.25, gt=0, le=1)
    anneal_steps: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _one_warmup(self) -> ScheduleConfig:
        if self.warmup_steps and self.warmup_fraction is not None:
            raise ValueError("set warmup_steps or warmup_fraction, not both")
        return self


def _cosine(progress: float, start: float, end: float) -> float:
    return end + (start - end) * 0.5 * (1 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))


def lr_multiplier(cfg: ScheduleConfig, total_steps: int) -> Callable[[int], float]:
    """Return ``f(step) -> multiplier`` for a run of ``total_steps`` optimizer steps."""
    total = max(1, total_steps)
    warmup = int(cfg.warmup_fraction * total) if cfg.warmup_fraction is not None else min(cfg.warmup_steps, total)
    floor = cfg.min_lr_ratio

    def warm(step: int) -> float | None:
        return (step + 1) / warmup if step < warmup else None

    if cfg.name == "constant":
        return lambda step: warm(step) or 1.0

    if cfg.name == "cosine":
        return lambda step: warm(step) or _cosine((step - warmup) / max(1, total - warmup), 1.0, floor)

    if cfg.name == "wsd":
        decay = max(1, int(cfg.decay_fraction * total))
        decay_start = total - decay

        def wsd(step: int) -> float:
            w = warm(step)
            if w is not None:
                return w
            if step < decay_start:
                return 1.0
            p = (step - decay_start) / decay
            shape = {"linear": 1 - p, "cosine": _cosine(p, 1.0, 0.0), "sqrt": 1 - math.sqrt(p)}[cfg.decay_shape]
            return floor + (1 - floor) * shape

        return wsd

    cooldown = cfg.cooldown_steps or max(1, total // 10)
    anneal = cfg.anneal_steps or max(1, total // 10)
    anneal_start = total - anneal
    const = cfg.constant_lr_ratio

    def infinite(step: int) -> float:
        w = warm(step)
        if w is not None:
            return w
        if step >= anneal_start:
            return const + (floor - const) * min(1.0, (step - anneal_start) / anneal)
        if step < warmup + cooldown:
            return _cosine((step - warmup) / cooldown, 1.0, const)
        return const

    return infinite
