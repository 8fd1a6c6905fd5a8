"""A probe evaluator built from the core's helpers: linear probe on the encoder, the raw series and a random encoder."""

from __future__ import annotations

from omnissl import ComponentConfig
from omnissl.evaluation.api import EvalResult, EvalRun
from omnissl.evaluation.probes import run_probes


class SeriesProbeConfig(ComponentConfig):
    """``label`` (None: the only one) and ``seeds`` (3) probe repetitions."""

    label: str | None = None
    seeds: int = 3


def build_probe(cfg: SeriesProbeConfig, ctx):
    def evaluate(run: EvalRun) -> EvalResult:
        # run_probes reports three rows from the same run: encoder, surface features, random encoder
        return run_probes(run, cfg.label, "linear", cfg.seeds)

    return evaluate
