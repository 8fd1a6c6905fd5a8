"""``video.probe``: clip-level linear and kNN probes with raw-pixel and random-encoder baselines.

Representations probed in the same run, on the source's train/val/test splits (a seeded 60/20/20 split
when the source has none), for every label set (moving digits: ``digit`` and ``direction``):
    the encoder's pooled output (mean of its final tokens over the whole evaluation clip);
    a freshly initialised encoder of the same config (``run.random_encoder()``);
    raw pixels: the clip averaged over time and area-downsampled to 8x8 per channel (the issue's
    "mean-pooled and downsampled" baseline), and a stronger one that keeps 4 frames of 8x8.
The probes are the core's (:mod:`omnissl.evaluation.probes`): L-BFGS logistic regression with weight
decay chosen on val, and weighted cosine kNN (k = 20, T = 0.07), both on features standardised with the
train split's mean and standard deviation.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor

from omnissl.evaluation.api import EvalResult, EvalRun
from omnissl.evaluation.probes import probe_table, resolve_splits
from omnissl.specs import BuildContext, ComponentConfig


class VideoProbeConfig(ComponentConfig):
    """Probe settings.

    Attributes:
        labels: which ``data.labels`` to predict (default ``None``: all; moving digits has digit, direction).
        probes: ``linear`` and/or ``knn`` (default both).
        baselines: also probe raw pixels and a random encoder (default ``True``).
        weight_decays: L2 grid for the linear probe, chosen on val (default 0, 1e-4, 1e-3, 1e-2).
        epochs: L-BFGS rounds of 10 iterations (default 30). k: kNN neighbours (default 20).
        batch_size: clips per encoding batch (default 64).
    """

    labels: list[str] | None = None
    probes: list[Literal["linear", "knn"]] = ["linear", "knn"]
    baselines: bool = True
    weight_decays: list[float] = Field(default_factory=lambda: [0.0, 1e-4, 1e-3, 1e-2])
    epochs: int = Field(30, ge=1)
    k: int = Field(20, ge=1)
    batch_size: int = Field(64, ge=1)


@torch.no_grad()
def encode_clips(encoder, source, batch_size: int = 64) -> Tensor:
    """Pooled embeddings of every evaluation clip (``source.gather``, fixed start and crop): ``(N, D)``."""
    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    out = []
    n = getattr(source, "num_clips", len(source))
    for start in range(0, n, batch_size):
        idx = torch.arange(start, min(start + batch_size, n))
        clips = source.gather(idx) if hasattr(source, "gather") else source.batch(idx)
        out.append(encoder(clips.to(device)).pooled.float())
    encoder.train(was_training)
    return torch.cat(out)


def standardize(features: Tensor, train: Tensor) -> Tensor:
    """Zero mean, unit variance per feature with the train rows' statistics: ``(N, D)`` -> ``(N, D)``."""
    mean, std = features[train].mean(dim=0), features[train].std(dim=0).clamp_min(1e-6)
    return (features - mean) / std


class VideoProbe:
    """Callable evaluator: ``probe(run) -> EvalResult`` named ``video_probe``.

    Metrics: ``{label}/{representation}/{linear,knn}_test_acc`` (and ``_val_acc``); one row per
    representation with a column per label and probe (test accuracy, %).
    """

    def __init__(self, cfg: VideoProbeConfig):
        self.cfg = cfg

    def representations(self, run: EvalRun) -> dict[str, Tensor]:
        reps = {"encoder": encode_clips(run.encoder, run.data, self.cfg.batch_size)}
        if self.cfg.baselines:
            reps["random encoder"] = encode_clips(run.random_encoder().to(run.device), run.data, self.cfg.batch_size)
            surface = run.data.surface() if hasattr(run.data, "surface") else {"raw pixels": run.data.surface_features()}
            reps.update({name: feats.to(run.device).float() for name, feats in surface.items()})
        return reps

    def __call__(self, run: EvalRun) -> EvalResult:
        data = run.data
        if not data.labels:
            raise ValueError("video.probe: the data source has no labels; put videos in class subfolders or give a label column")
        names = self.cfg.labels or sorted(data.labels)
        unknown = [n for n in names if n not in data.labels]
        if unknown:
            raise ValueError(f"video.probe: labels {unknown} are not in the data source's labels {sorted(data.labels)}")
        reps = self.representations(run)
        n = next(iter(reps.values())).shape[0]
        splits = resolve_splits(data, n, run.seed, run.device)
        # every representation is standardised with train statistics before both probes: MAE's linear probe
        # puts an affine-free BatchNorm before the classifier, and mean-pooled ViT tokens share a large
        # constant component that would otherwise dominate the kNN probe's cosine similarity
        reps = {name: standardize(feats, splits["train"]) for name, feats in reps.items()}
        metrics, rows = probe_table(reps, data.labels, names, splits, list(self.cfg.probes), weight_decays=tuple(self.cfg.weight_decays),
                                    epochs=self.cfg.epochs, k=self.cfg.k, seed=run.seed)
        return EvalResult(name="video_probe", metrics=metrics, rows=rows)


def video_probe(cfg: VideoProbeConfig, ctx: BuildContext) -> VideoProbe:
    return VideoProbe(cfg)
