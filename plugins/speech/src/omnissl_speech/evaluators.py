"""``speech.probe``: utterance-level linear and kNN probes with surface-feature and random-encoder baselines.

Representations probed in the same run, on the source's train/val/test splits:
    the encoder's pooled output (masked mean of its final tokens), optionally each layer's masked mean;
    a freshly initialised encoder of the same config (``run.random_encoder()``);
    surface features computed from the un-normalised frames: log-mel mean, log-mel mean+std and
    MFCC mean+std (20 coefficients).
The probes themselves are the core's (:mod:`omnissl.evaluation.probes`): L-BFGS logistic regression with
weight decay selected on val, and weighted cosine kNN (k = 20, T = 0.07).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor

from omnissl.evaluation.api import EvalResult, EvalRun
from omnissl.evaluation.probes import probe_table
from omnissl.nn import masked_mean
from omnissl.specs import BuildContext, ComponentConfig


class SpeechProbeConfig(ComponentConfig):
    """Probe settings.

    Attributes:
        labels: which ``data.labels`` to predict (default ``None``: all of them; FSDD has digit, speaker).
        probes: ``linear`` and/or ``knn`` (default both).
        baselines: also probe surface features and a random encoder (default ``True``).
        layers: also probe the masked mean of every block's output (layer-wise probing, default ``False``).
        weight_decays: L2 grid for the linear probe, chosen on val (default 0, 1e-4, 1e-3, 1e-2).
        epochs: L-BFGS rounds of 10 iterations (default 30). k: kNN neighbours (default 20).
        batch_size: utterances per encoding batch (default 64).
    """

    labels: list[str] | None = None
    probes: list[Literal["linear", "knn"]] = ["linear", "knn"]
    baselines: bool = True
    layers: bool = False
    weight_decays: list[float] = Field(default_factory=lambda: [0.0, 1e-4, 1e-3, 1e-2])
    epochs: int = Field(30, ge=1)
    k: int = Field(20, ge=1)
    batch_size: int = Field(64, ge=1)


@torch.no_grad()
def encode_utterances(encoder, source, batch_size: int = 64, layers: bool = False) -> dict[str, Tensor]:
    """Pooled embeddings of every utterance in index order (``source.gather``), plus per-layer means."""
    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    out: dict[str, list[Tensor]] = {"encoder": []}
    n = getattr(source, "num_utterances", len(source))
    for start in range(0, n, batch_size):
        idx = torch.arange(start, min(start + batch_size, n), device=device)
        batch = source.gather(idx) if hasattr(source, "gather") else source.batch(idx)
        enc = encoder(batch)
        out["encoder"].append(enc.pooled.float())
        if layers and enc.layers:
            for i, layer in enumerate(enc.layers, start=1):
                out.setdefault(f"encoder layer {i}", []).append(masked_mean(layer, enc.padding_mask).float())
    encoder.train(was_training)
    return {k: torch.cat(v) for k, v in out.items()}


class SpeechProbe:
    """Callable evaluator: ``probe(run) -> EvalResult`` named ``speech_probe``.

    Metrics: ``{label}/{representation}/{linear,knn}_test_acc`` (and ``_val_acc``); one row per
    representation with a column per label and probe (test accuracy, %).
    """

    def __init__(self, cfg: SpeechProbeConfig):
        self.cfg = cfg

    def representations(self, run: EvalRun) -> dict[str, Tensor]:
        reps = encode_utterances(run.encoder, run.data, self.cfg.batch_size, self.cfg.layers)
        if self.cfg.baselines:
            random_encoder = run.random_encoder().to(run.device)
            reps["random encoder"] = encode_utterances(random_encoder, run.data, self.cfg.batch_size)["encoder"]
            surface = getattr(run.data, "surface", None) or {"surface features": run.data.surface_features()}
            reps.update({name: feats.to(run.device).float() for name, feats in surface.items()})
        return reps

    def __call__(self, run: EvalRun) -> EvalResult:
        data = run.data
        names = self.cfg.labels or sorted(data.labels)
        unknown = [n for n in names if n not in data.labels]
        if unknown:
            raise ValueError(f"speech.probe: labels {unknown} are not in the data source's labels {sorted(data.labels)}")
        splits = {k: data.splits[k].to(run.device) for k in ("train", "val", "test")}
        reps = self.representations(run)
        metrics, rows = probe_table(reps, data.labels, names, splits, list(self.cfg.probes), weight_decays=tuple(self.cfg.weight_decays),
                                    epochs=self.cfg.epochs, k=self.cfg.k, seed=run.seed)
        return EvalResult(name="speech_probe", metrics=metrics, rows=rows)


def speech_probe(cfg: SpeechProbeConfig, ctx: BuildContext) -> SpeechProbe:
    return SpeechProbe(cfg)
