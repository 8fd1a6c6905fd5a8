"""NT-Xent, the normalised-temperature cross-entropy of SimCLR.

Reference: Chen et al., "A Simple Framework for Contrastive Learning of Visual Representations", ICML 2020,
eq. (1); reference code github.com/google-research/simclr (``objective.py``, ``add_contrastive_loss``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from omnissl import distributed
from omnissl.distributed import gather_with_grad


class NTXentLoss(nn.Module):
    """InfoNCE over two views with ``2N - 2`` negatives per anchor, gathered across processes.

    For anchor ``z_i`` with positive ``z_j`` (its other view):
    ``l(i) = -log exp(sim(z_i, z_j)/t) / sum_{k != i} exp(sim(z_i, z_k)/t)`` with cosine ``sim``; the loss
    averages ``l`` over both views of every sample of the global batch. Negatives come from every process
    (:func:`omnissl.distributed.gather_with_grad`); each process computes its local rows against the
    global columns, so DDP's gradient average equals the one-process gradient on the global batch.

    Args:
        temperature: ``t`` (SimCLR default 0.5 for small batches; 0.1 for large ones). Default 0.5.

    Shapes:
        ``z_a``, ``z_b``: ``(B, D)`` -> scalar.

    Example::

        >>> loss = NTXentLoss(temperature=0.5)
        >>> float(loss(torch.eye(4), torch.eye(4))) < float(loss(torch.eye(4), torch.eye(4).roll(1, 0)))
        True
    """

    def __init__(self, temperature: float = 0.5):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"NT-Xent temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def forward(self, z_a: Tensor, z_b: Tensor) -> Tensor:
        if z_a.shape != z_b.shape or z_a.dim() != 2:
            raise ValueError(f"NT-Xent needs two (B, D) views of equal shape, got {tuple(z_a.shape)} and {tuple(z_b.shape)}")
        if z_a.shape[0] * distributed.world_size() < 2:
            raise ValueError("NT-Xent needs at least 2 samples in the global batch to have negatives")
        z_a, z_b = F.normalize(z_a.float(), dim=1), F.normalize(z_b.float(), dim=1)
        local = z_a.shape[0]
        offset = distributed.rank() * local
        all_a, all_b = gather_with_grad(z_a), gather_with_grad(z_b)
        columns = torch.cat([all_a, all_b], dim=0)  # (2G, D)
        global_n = all_a.shape[0]
        rows = torch.cat([z_a, z_b], dim=0)  # (2B, D)
        logits = rows @ columns.T / self.temperature
        local_idx = torch.arange(local, device=z_a.device) + offset
        self_idx = torch.cat([local_idx, local_idx + global_n])
        positive_idx = torch.cat([local_idx + global_n, local_idx])
        logits = logits.masked_fill(F.one_hot(self_idx, 2 * global_n).bool(), float("-inf"))
        return F.cross_entropy(logits, positive_idx)
