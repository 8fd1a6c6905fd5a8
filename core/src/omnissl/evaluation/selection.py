"""Picking the best evaluation of a run by one validation metric (``eval.select``), with optional early stopping.

The engine hands every evaluation's metrics to :meth:`Selection.update`, flattened as
``<task>/<evaluator result>/<metric>`` (the keys of ``metrics.jsonl`` without ``eval/``). The first
evaluation resolves ``eval.select`` to one of those keys; a name that matches none, or several, is a
:class:`ConfigError` listing the metrics there are. The state (best value, its step and metrics, the count
of evaluations without improvement) goes into every checkpoint, so a resumed run keeps its best.

Hand-written: early stopping in Lightning or Keras watches one logged scalar inside their own loops; this
is the same rule (strict improvement, ``patience`` evaluations in a row) on the engine's evaluations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from omnissl.errors import ConfigError, did_you_mean


@dataclass
class Selection:
    """The best evaluation so far by ``metric`` (as configured), in direction ``mode``.

    Attributes:
        metric: ``eval.select`` as written; ``key`` is the full ``<task>/<result>/<metric>`` it resolved to.
        mode: ``max`` or ``min`` (``auto`` already resolved, see :meth:`EvalScheduleConfig.direction`).
        patience: evaluations in a row without improvement after which :attr:`exhausted` is true (None: never).
        best_value, best_step, best_metrics: the best evaluation's value, step and every metric.
        stale: evaluations since the last improvement.
    """

    metric: str
    mode: Literal["max", "min"]
    patience: int | None = None
    key: str | None = None
    best_value: float | None = None
    best_step: int | None = None
    best_metrics: dict[str, float] = field(default_factory=dict)
    stale: int = 0

    def resolve(self, flat: dict[str, float]) -> str:
        """The key of ``flat`` that ``metric`` names: itself, or ``<task>/<metric>`` for exactly one task."""
        wanted = self.metric.removeprefix("eval/")
        if wanted in flat:
            return wanted
        matches = [k for k in flat if k.split("/", 1)[-1] == wanted]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise ConfigError([f"eval.select: {self.metric!r} names a metric of several tasks ({', '.join(sorted(matches))}); "
                               "write it with its task, e.g. eval.select=" + sorted(matches)[0]])
        shown = ", ".join(sorted(flat)[:30]) + (f" and {len(flat) - 30} more" if len(flat) > 30 else "")
        raise ConfigError([f"eval.select: no evaluation metric is named {self.metric!r}{did_you_mean(wanted, [k.split('/', 1)[-1] for k in flat])}; "
                           f"the evaluators report: {shown}. Set eval.select to one of them (a val_* metric)"])

    def update(self, step: int, flat: dict[str, float]) -> bool:
        """Record one evaluation; True when it is the best so far (strictly better; NaN never is)."""
        if self.key is None or self.key not in flat:
            self.key = self.resolve(flat)
        value = float(flat[self.key])
        better = math.isfinite(value) and (
            self.best_value is None or (value > self.best_value if self.mode == "max" else value < self.best_value)
        )
        if better:
            self.best_value, self.best_step, self.best_metrics, self.stale = value, step, dict(flat), 0
        else:
            self.stale += 1
        return better

    @property
    def exhausted(self) -> bool:
        """``patience`` evaluations in a row brought no improvement: stop training."""
        return self.patience is not None and self.stale >= self.patience

    def summary(self) -> dict[str, Any]:
        """What ``best.json`` holds: the metric, its direction, the best step and value, the test metrics beside
        it (:meth:`held_out`) and every metric of that evaluation."""
        return {"select": self.key or self.metric, "mode": self.mode, "step": self.best_step, "value": self.best_value,
                "checkpoint": "checkpoints/best.pt", "test": self.held_out(), "metrics": self.best_metrics}

    def report(self) -> str:
        """One line for the end of a run: the best step and value, and the test metrics of that evaluation."""
        if self.best_step is None:
            return f"eval.select: no evaluation gave a finite {self.key or self.metric}; no best.pt was kept"
        shown = "; ".join(f"{k} = {v:.4g}" for k, v in self.held_out().items()) or "(none besides it)"
        return (f"best evaluation by {self.key} ({self.mode}): step {self.best_step}, {self.best_value:.4g} "
                f"(checkpoints/best.pt, best.json); test metrics there: {shown}")

    def held_out(self) -> dict[str, float]:
        """The best evaluation's metrics beside the selected one: same evaluator and representation (the key
        up to its last ``/``), leaving out validation scores (``val*``), spreads (``*_std``) and probe
        settings (``converged``, ``weight_decay``, ``epoch``): ``encoder/test_acc`` for ``encoder/val_acc``,
        ``pretrained/linear/accuracy`` for ``pretrained/linear/val_accuracy``."""
        prefix = (self.key or self.metric).rsplit("/", 1)[0] + "/"

        def held(key: str) -> bool:
            last = key.rsplit("/", 1)[-1]
            return not last.startswith("val") and not last.endswith("_std") and last not in ("converged", "weight_decay", "epoch")

        return {k: v for k, v in self.best_metrics.items() if k.startswith(prefix) and held(k)}

    def state_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "key": self.key, "best_value": self.best_value, "best_step": self.best_step,
                "best_metrics": dict(self.best_metrics), "stale": self.stale}

    def load_state_dict(self, state: dict[str, Any] | None) -> str | None:
        """Restore a checkpoint's selection; returns a note when it watched another metric (then it starts afresh)."""
        if not state:
            return None
        if state.get("metric") != self.metric:
            return f"eval.select is now {self.metric!r} (the checkpoint watched {state.get('metric')!r}): the best evaluation is chosen afresh"
        self.key, self.best_value, self.best_step = state["key"], state["best_value"], state["best_step"]
        self.best_metrics, self.stale = dict(state["best_metrics"]), int(state["stale"])
        return None
