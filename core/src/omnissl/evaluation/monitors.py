"""Label-free collapse monitors computed on the device: RankMe and embedding standard deviation.

The engine reads them at log intervals through :func:`collapse_metrics`, on centred embeddings (see there).

RankMe: Garrido et al., "RankMe: Assessing the Downstream Performance of Pretrained Self-Supervised
Representations by Their Rank", ICML 2023, eq. (1): ``exp(-sum_k p_k log p_k)`` with
``p_k = sigma_k / ||sigma||_1 + eps`` and ``eps = 1e-7``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

RANKME_EPS = 1e-7


def rankme(z: Tensor, eps: float = RANKME_EPS) -> Tensor:
    """Smooth effective rank of ``z`` ``(N, D)``: a scalar tensor in ``[1, min(N, D)]`` (no host sync)."""
    if z.dim() != 2:
        raise ValueError(f"rankme needs a (N, D) embedding matrix, got shape {tuple(z.shape)}")
    s = torch.linalg.svdvals(z.float())
    p = s / s.sum().clamp_min(1e-12) + eps
    return torch.exp(-(p * torch.log(p)).sum())


def embedding_std(z: Tensor) -> Tensor:
    """Mean over dimensions of the per-dimension std of L2-normalised embeddings.

    Collapse drives it to 0; for uniformly spread embeddings it is about ``1 / sqrt(D)`` (SimSiam, sec. 4.1).
    """
    return F.normalize(z.float(), dim=1).std(dim=0).mean()


def collapse_metrics(z: Tensor) -> dict[str, Tensor]:
    """``{"rankme": ..., "embedding_std": ...}`` of ``z`` ``(N, D)`` centred over its samples, as device scalars.

    Why centred: an offset shared by every sample carries nothing a probe can use (the probes standardise
    their inputs), yet on raw embeddings it is the largest singular value and the direction of every
    L2-normalised row. A tabular transformer's mean token, for example, gave RankMe 1.2 and std 0.002 for a
    whole run whose probe kept improving. After centring, RankMe counts the directions along which samples
    differ and the std is 0 exactly when every sample is the same (collapse) and about ``1 / sqrt(D)`` when
    they spread evenly, as the docs say. :func:`rankme` and :func:`embedding_std` themselves stay the
    papers' formulas on whatever they are given.
    """
    z = z.float()
    z = z - z.mean(dim=0, keepdim=True)
    return {"rankme": rankme(z), "embedding_std": embedding_std(z)}


def monitored_representation(encoder, batch) -> Tensor:
    """The embedding ``(N, D')`` that collapse monitors should read: the one the encoder's probes read.

    An encoder may define ``probe_features(batch)`` (the tabular transformer returns its EMA target
    encoder's flattened tokens, what ``tabular.probe`` reads); otherwise the pooled output is used.
    """
    if hasattr(encoder, "probe_features"):
        return encoder.probe_features(batch)
    return encoder(batch).pooled
