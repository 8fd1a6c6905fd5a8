"""MoCo's InfoNCE: a query against its key and a queue of earlier keys.

Reference: He et al., "Momentum Contrast for Unsupervised Visual Representation Learning", CVPR 2020, eq. (1)
and algorithm 1; MoCo v2 (Chen et al., arXiv:2003.04297) adds the MLP head and temperature 0.2. Reference
code github.com/facebookresearch/moco (``moco/builder.py``): ``l_pos = q.k``, ``l_neg = q.queue``,
``logits = cat([l_pos, l_neg]) / T``, cross-entropy with the key at index 0; ``q`` and ``k`` L2-normalised,
the key and the queue carry no gradient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _check(name: str, q: Tensor, k: Tensor, queue: Tensor) -> None:
    if q.shape != k.shape or q.dim() != 2 or queue.dim() != 2 or queue.shape[1] != q.shape[1]:
        raise ValueError(
            f"{name} needs q, k (B, D) and a queue (K, D) of the same width, got {tuple(q.shape)}, {tuple(k.shape)}, "
            f"{tuple(queue.shape)}"
        )


def moco_logits(q: Tensor, k: Tensor, queue: Tensor, temperature: float = 1.0) -> tuple[Tensor, Tensor]:
    """Normalised query and ``[q.k, q.queue] / temperature``: ``(B, D)``, ``(B, 1 + K)``; key and queue detached.

    The queue is assumed to hold unit rows already (the objectives push normalised keys), as in the reference.
    The query is divided by the temperature before the products, which spares a pass over the ``(B, K)``
    logits in the forward and the backward.
    """
    q = F.normalize(q.float(), dim=1)
    scaled = q / temperature
    k = F.normalize(k.detach().float(), dim=1)
    positive = (scaled * k).sum(dim=1, keepdim=True)
    negative = scaled @ queue.detach().float().T
    return q, torch.cat([positive, negative], dim=1)


class MoCoLoss(nn.Module):
    """InfoNCE of each query against its key (positive) and every queue entry (negatives).

    Args:
        temperature: ``T`` (0.2, MoCo v2; 0.07 in MoCo v1).

    Shapes:
        ``q``, ``k``: ``(B, D)``; ``queue``: ``(K, D)`` unit rows -> scalar.

    Example::

        >>> q = torch.eye(3, 4)
        >>> float(MoCoLoss(0.2)(q, q, -torch.eye(2, 4))) < float(MoCoLoss(0.2)(q, -q, torch.eye(2, 4)))
        True
    """

    def __init__(self, temperature: float = 0.2):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"MoCo temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def forward(self, q: Tensor, k: Tensor, queue: Tensor) -> Tensor:
        _check("MoCo", q, k, queue)
        _, logits = moco_logits(q, k, queue, self.temperature)
        return F.cross_entropy(logits, torch.zeros(q.shape[0], dtype=torch.long, device=q.device))
