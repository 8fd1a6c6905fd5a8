"""k-means targets for HuBERT (Hsu et al. 2021): clusters of input features, then of a model's own layers.

Iteration 1 clusters the input frames (MFCCs in the paper; here the source's frame features, optionally
turned into MFCCs). Iteration 2 clusters the frames of a chosen layer of the iteration-1 model.
:func:`collect_frames` and :func:`kmeans` are the utility; :func:`load_encoder_weights` reads an encoder
out of an omnissl run checkpoint so a config can point at the previous iteration's model.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from omnissl.checkpoint import load as load_checkpoint
from omnissl.errors import ConfigError


@torch.no_grad()
def kmeans(x: Tensor, k: int, iters: int = 25, seed: int = 0) -> Tensor:
    """Lloyd's k-means with k-means++ seeding, on ``x``'s device. ``(N, D) -> centroids (k, D)``.

    Empty clusters are re-seeded with the points farthest from their centroid.
    """
    x = x.float()
    g = torch.Generator(device="cpu").manual_seed(seed)
    n = x.shape[0]
    if n < k:
        raise ValueError(f"k-means needs at least k={k} frames, got {n}; lower num_clusters or use more data")
    centroids = x[torch.randint(n, (1,), generator=g)]
    closest = torch.cdist(x, centroids).squeeze(1) ** 2
    for _ in range(1, k):
        probs = (closest / closest.sum().clamp_min(1e-12)).cpu()
        nxt = x[torch.multinomial(probs, 1, generator=g).to(x.device)]
        centroids = torch.cat([centroids, nxt])
        closest = torch.minimum(closest, torch.cdist(x, nxt).squeeze(1) ** 2)
    for _ in range(iters):
        dist = torch.cdist(x, centroids)
        assign = dist.argmin(dim=1)
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k).float()
        empty = counts == 0
        centroids = torch.where(empty[:, None], centroids, sums / counts.clamp_min(1)[:, None])
        if empty.any():
            far = dist.gather(1, assign[:, None]).squeeze(1).topk(int(empty.sum())).indices
            centroids[empty] = x[far]
    return centroids


def assign(x: Tensor, centroids: Tensor) -> Tensor:
    """Nearest centroid ids: ``(..., D), (K, D) -> (...)`` long."""
    flat = x.reshape(-1, x.shape[-1]).float()
    return torch.cdist(flat, centroids.float()).argmin(dim=1).reshape(x.shape[:-1])


def resample_targets(targets: Tensor, source_padding: Tensor, frame_padding: Tensor) -> Tensor:
    """Map per-frame targets from one frame grid to another per utterance by nearest position.

    Feature frames (10 ms windows) and convolutional encoder frames differ in count by a few frames;
    frame ``j`` of an utterance with ``L'`` encoder frames takes the target of feature frame
    ``floor((j + 0.5) * L / L')``.

    Shapes:
        ``targets (B, T)``, ``source_padding (B, T)``, ``frame_padding (B, T')`` -> ``(B, T')``.
    """
    if targets.shape == frame_padding.shape and torch.equal(source_padding, frame_padding):
        return targets
    src_len = (~source_padding).sum(dim=1, keepdim=True).clamp_min(1)
    dst_len = (~frame_padding).sum(dim=1, keepdim=True).clamp_min(1)
    j = torch.arange(frame_padding.shape[1], device=targets.device)[None, :]
    index = ((j + 0.5) * src_len / dst_len).long().clamp_max(src_len - 1)
    return torch.gather(targets, 1, index)


@torch.no_grad()
def collect_frames(source, encode, max_frames: int = 50_000, batch_size: int = 64, seed: int = 0) -> Tensor:
    """Valid frames ``(N, D)`` of ``encode(batch) -> (frames (B, T, D), padding (B, T))`` over the source's
    pretraining utterances, uniformly subsampled to ``max_frames`` (k-means on a sample, as HuBERT does)."""
    chunks = []
    device = source.frames.device if hasattr(source, "frames") else torch.device("cpu")
    for start in range(0, len(source), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(source)), device=device)
        frames, padding = encode(source.batch(idx))
        chunks.append(frames[~padding].float())
    frames = torch.cat(chunks)
    if frames.shape[0] > max_frames:
        keep = torch.randperm(frames.shape[0], generator=torch.Generator().manual_seed(seed))[:max_frames]
        frames = frames[keep.to(frames.device)]
    return frames


def load_encoder_weights(encoder: torch.nn.Module, checkpoint: str | Path, task: str | None = None) -> None:
    """Load the encoder of ``task`` (or of the only task) from an omnissl run checkpoint into ``encoder``."""
    state = load_checkpoint(checkpoint)["model"]
    tasks = sorted({k.split(".")[1] for k in state if k.startswith("tasks.") and ".encoder." in k})
    if task is None:
        if len(tasks) != 1:
            raise ConfigError([f"objective.target_task: checkpoint {checkpoint} has tasks {tasks}; name the one whose encoder gives targets"])
        task = tasks[0]
    prefix = f"tasks.{task}.encoder."
    weights = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
    if not weights:
        raise ConfigError([f"objective.target_task: no encoder for task {task!r} in {checkpoint}; tasks there: {tasks}"])
    missing, unexpected = encoder.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise ConfigError([
            f"objective.target_checkpoint: encoder in {checkpoint} does not match this encoder "
            f"(missing {missing[:5]}, unexpected {unexpected[:5]}); use the same encoder config as that run"
        ])
