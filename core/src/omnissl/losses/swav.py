"""SwAV: online clustering with prototypes and Sinkhorn-Knopp equipartitioned codes.

Reference: Caron et al., "Unsupervised Learning of Visual Features by Contrasting Cluster Assignments",
NeurIPS 2020, section 3.1 and appendix A; reference code github.com/facebookresearch/swav
(``main_swav.py``, ``distributed_sinkhorn``). Codes ``Q = sinkhorn(scores)`` are computed without gradient
and predicted from the *other* view: ``-sum_k q_a log softmax(s_b / T)`` and symmetrically.

The Sinkhorn normalisation is distributed-correct: the total, the row (prototype) sums and the column
count are all reduced over processes, so two processes give the one-process codes of the global batch.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from omnissl import distributed


def _global_row_logsumexp(log_q: Tensor) -> Tensor:
    """``log sum_b exp(log_q[k, b])`` over the samples of every process: ``(K, B) -> (K, 1)``."""
    top = log_q.max(dim=1, keepdim=True).values
    if distributed.world_size() > 1:
        dist.all_reduce(top, op=dist.ReduceOp.MAX)
    total = torch.exp(log_q - top).sum(dim=1, keepdim=True)
    distributed.all_reduce_sum(total)
    return top + torch.log(total)


@torch.no_grad()
def sinkhorn_knopp(scores: Tensor, epsilon: float = 0.05, iterations: int = 3) -> Tensor:
    """Equipartitioned soft assignments of samples to prototypes (SwAV's ``distributed_sinkhorn``).

    ``Q = exp(scores / epsilon)`` is alternately scaled so that every prototype gets ``1/K`` of the mass
    and every sample ``1/B`` (``B`` the *global* batch), then rescaled so each sample's codes sum to 1.
    Computed in the log domain (the same iterates as the reference code, which exponentiates directly and
    overflows or underflows for small ``epsilon``); the reference's first division by the total mass is a
    global constant that the first row normalisation removes, so it is skipped.

    Shapes:
        ``scores``: ``(B, K)`` local samples by prototypes -> ``(B, K)`` codes, rows summing to 1.
    """
    if scores.dim() != 2:
        raise ValueError(f"sinkhorn_knopp needs (B, K) scores, got {tuple(scores.shape)}")
    if epsilon <= 0 or iterations < 1:
        raise ValueError(f"sinkhorn_knopp needs epsilon > 0 and iterations >= 1, got {epsilon}, {iterations}")
    log_q = (scores.float() / epsilon).T  # (K, B)
    num_prototypes = log_q.shape[0]
    num_samples = torch.tensor(float(log_q.shape[1]), device=log_q.device)
    distributed.all_reduce_sum(num_samples)
    log_k, log_b = math.log(num_prototypes), torch.log(num_samples)
    for _ in range(iterations):
        log_q = log_q - _global_row_logsumexp(log_q) - log_k
        log_q = log_q - torch.logsumexp(log_q, dim=0, keepdim=True) - log_b
    return torch.exp(log_q + log_b).T


class SwAVLoss(nn.Module):
    """Swapped prediction over two views given their prototype scores.

    Args:
        temperature: softmax temperature ``T`` (0.1). epsilon: Sinkhorn ``epsilon`` (0.05).
        sinkhorn_iterations: (3).

    Shapes:
        ``scores_a``, ``scores_b``: ``(B, K)`` cosine scores to the prototypes -> scalar.
    """

    def __init__(self, temperature: float = 0.1, epsilon: float = 0.05, sinkhorn_iterations: int = 3):
        super().__init__()
        if temperature <= 0 or epsilon <= 0 or sinkhorn_iterations < 1:
            raise ValueError("SwAV needs temperature > 0, epsilon > 0 and sinkhorn_iterations >= 1")
        self.temperature, self.epsilon, self.iterations = temperature, epsilon, sinkhorn_iterations

    def forward(self, scores_a: Tensor, scores_b: Tensor) -> Tensor:
        if scores_a.shape != scores_b.shape or scores_a.dim() != 2:
            raise ValueError(f"SwAV needs two (B, K) score tensors of equal shape, got {tuple(scores_a.shape)} and {tuple(scores_b.shape)}")
        q_a = sinkhorn_knopp(scores_a.detach(), self.epsilon, self.iterations)
        q_b = sinkhorn_knopp(scores_b.detach(), self.epsilon, self.iterations)
        log_p_a = F.log_softmax(scores_a.float() / self.temperature, dim=1)
        log_p_b = F.log_softmax(scores_b.float() / self.temperature, dim=1)
        return -0.5 * ((q_a * log_p_b).sum(dim=1).mean() + (q_b * log_p_a).sum(dim=1).mean())


class Prototypes(nn.Module):
    """``K`` learnable prototype vectors; ``forward(z)`` gives cosine scores ``normalise(z) C^T``.

    SwAV keeps the prototypes on the unit sphere; :meth:`normalise_` re-projects them (call it after each
    optimizer step, as the reference code does at the start of each iteration).

    Shapes:
        ``(B, D)`` -> ``(B, K)``.
    """

    def __init__(self, dim: int, num_prototypes: int):
        super().__init__()
        self.weight = nn.Parameter(F.normalize(torch.randn(num_prototypes, dim), dim=1))

    @torch.no_grad()
    def normalise_(self) -> None:
        self.weight.copy_(F.normalize(self.weight, dim=1))

    def forward(self, z: Tensor) -> Tensor:
        # Sinkhorn divides these scores by epsilon = 0.05: keep them in fp32 under autocast
        with torch.autocast(device_type=z.device.type, enabled=False):
            return F.normalize(z.float(), dim=1) @ self.weight.float().T
