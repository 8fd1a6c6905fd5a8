"""Near-duplicate removal before contrastive pretraining ("Less is More", selective reduction of CT data).

"Less is More: Selective reduction of CT data for self-supervised pre-training of deep learning models with
contrastive learning improves downstream classification performance" (Wolf et al. 2024) shows that consecutive CT slices are so alike that contrastive pretraining sees the same
image as its own negative; dropping slices whose similarity to the last kept one is above a threshold
before pretraining helps the downstream task. Here that rule is available for slices (within each volume,
along one axis) and for whole volumes (across the dataset).

Similarity is the cosine of the mean-centred, average-pooled intensities (a normalised cross-correlation
of the downsampled images); the paper compares several similarity measures; NCC is chosen here because it needs
no pretrained network (nothing may be downloaded at run time).

The scan is greedy in order: an item is kept when its similarity to **every** kept item in the window is
at most ``threshold`` (for slices the window is the last kept slice, as in the paper's consecutive-slice
reduction; for volumes it is every kept volume).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from omnissl.specs import ComponentConfig


class CurationConfig(ComponentConfig):
    """Near-duplicate removal, applied once when the dataset is built.

    Attributes:
        level: ``"volumes"`` (drop volumes too similar to a kept one) or ``"slices"`` (drop slices along
            ``axis`` too similar to the last kept slice; NIfTI folders only, before sizing) (default ``"volumes"``).
        threshold: similarity above which an item is a near duplicate (default 0.95; the paper sweeps it).
        pool: side of the average-pooled grid used to compare items (default 8).
        axis: slice axis for ``level: slices`` (default 0, the first voxel axis after reorientation).
    """

    level: Literal["volumes", "slices"] = "volumes"
    threshold: float = Field(0.95, gt=-1.0, le=1.0)
    pool: int = Field(8, ge=1)
    axis: int = Field(0, ge=0, le=2)


def _signatures(items: Tensor, pool: int) -> Tensor:
    """``(N, ...)`` images or volumes -> ``(N, F)`` unit vectors of mean-centred pooled intensities."""
    x = items.float()
    if x.dim() == 3:  # (N, H, W) slices
        x = F.adaptive_avg_pool2d(x[:, None], pool)
    else:  # (N, C, D, H, W) volumes
        x = F.adaptive_avg_pool3d(x, pool)
    x = x.flatten(1)
    x = x - x.mean(dim=1, keepdim=True)
    return F.normalize(x, dim=1)


def near_duplicate_volumes(volumes: Tensor, threshold: float, pool: int = 8) -> Tensor:
    """Indices of the volumes kept by the greedy scan: ``(N, C, D, H, W)`` -> ``(K,)`` long, in order."""
    sig = _signatures(volumes, pool)
    sim = sig @ sig.T
    keep: list[int] = []
    for i in range(sig.shape[0]):
        if not keep or bool((sim[i, keep] <= threshold).all()):
            keep.append(i)
    return torch.tensor(keep, dtype=torch.long)


def near_duplicate_slices(volume: Tensor, threshold: float, axis: int = 0, pool: int = 8) -> Tensor:
    """Indices along ``axis`` of the slices kept from one ``(C, D, H, W)`` volume (consecutive-slice rule)."""
    slices = volume.movedim(axis + 1, 0).mean(dim=1)  # (S, H', W'), channels averaged for the comparison
    sig = _signatures(slices, pool)
    keep = [0]
    for i in range(1, sig.shape[0]):
        if float(sig[i] @ sig[keep[-1]]) <= threshold:
            keep.append(i)
    return torch.tensor(keep, dtype=torch.long)
