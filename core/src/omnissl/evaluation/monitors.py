"""Label-free collapse monitors computed on the device: RankMe and embedding standard deviation.

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
    """``{"rankme": ..., "embedding_std": ...}`` as device scalars, read by the engine at log intervals."""
    return {"rankme": rankme(z), "embedding_std": embedding_std(z)}
