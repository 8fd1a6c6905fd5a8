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


# exp((s - bound) / epsilon) with (2 * bound) / epsilon up to this stays >= e^-80 ~ 1.8e-35, inside fp32's
# normal range (1.2e-38): no prototype's row can underflow to zero, so the direct iterates are exact
DIRECT_EXPONENT_RANGE = 80.0


def _direct_sinkhorn(scores: Tensor, epsilon: float, iterations: int, score_bound: float) -> Tensor:
    """The reference iterates on ``exp((scores - bound) / epsilon)``, kept as scaling vectors.

    Every iterate of the reference is ``diag(u) K diag(v)``: a row normalisation only rescales ``u`` and a
    column normalisation only rescales ``v``. So each iteration is two matrix-vector products over ``K``
    (read only) instead of two reductions and two in-place divisions of the whole matrix, and ``Q`` is formed
    once at the end. The shift by the bound is a global constant, which the first row normalisation removes
    (as the reference's ``Q /= sum(Q)``); its divisions by ``K`` and ``B`` rescale rows or columns that the next
    normalisation fixes, so they are skipped.
    """
    kernel = scores.float().div(epsilon).sub_(score_bound / epsilon).exp_()  # (B, K), one allocation
    v = torch.ones(kernel.shape[0], dtype=kernel.dtype, device=kernel.device)
    for _ in range(iterations):
        u = distributed.all_reduce_sum(kernel.T @ v).reciprocal_()  # prototypes: row sums over the global batch
        v = (kernel @ u).reciprocal_()  # samples: each column of Q sums to 1
    return kernel.mul_(u).mul_(v.unsqueeze(1))


def _log_sinkhorn(scores: Tensor, epsilon: float, iterations: int) -> Tensor:
    """The same iterates in the log domain: stable for any ``epsilon`` and score range."""
    log_q = (scores.float() / epsilon).T  # (K, B)
    num_prototypes = log_q.shape[0]
    num_samples = torch.tensor(float(log_q.shape[1]), device=log_q.device)
    distributed.all_reduce_sum(num_samples)
    log_k, log_b = math.log(num_prototypes), torch.log(num_samples)
    for _ in range(iterations):
        log_q = log_q - _global_row_logsumexp(log_q) - log_k
        log_q = log_q - torch.logsumexp(log_q, dim=0, keepdim=True) - log_b
    return torch.exp(log_q + log_b).T


@torch.no_grad()
def sinkhorn_knopp(scores: Tensor, epsilon: float = 0.05, iterations: int = 3, *, score_bound: float | None = None) -> Tensor:
    """Equipartitioned soft assignments of samples to prototypes (SwAV's ``distributed_sinkhorn``).

    ``Q = exp(scores / epsilon)`` is alternately scaled so that every prototype gets ``1/K`` of the mass
    and every sample ``1/B`` (``B`` the *global* batch), then rescaled so each sample's codes sum to 1.

    Two paths give the same iterates:

    - direct (fast): when the caller bounds the scores (``|s| <= score_bound``, e.g. 1 for cosine scores to
      unit prototypes) and ``2 * score_bound / epsilon <= 80``, the reference's exponentials are taken after
      subtracting ``score_bound`` (a constant the normalisation removes) and the normalisations are kept as
      two scaling vectors (two matrix-vector products per iteration): nothing can overflow, and no row can
      underflow to zero in fp32. SwAV's defaults (cosine scores, ``epsilon`` 0.05: range 40) take this path.
    - log domain (stable): otherwise (no bound given, or a smaller ``epsilon``), every scaling is a
      log-sum-exp, which stays finite where the reference code overflows or underflows.

    The choice is made from the arguments on the host, never from tensor values, so it costs no device sync.
    The row (prototype) sums and the sample count are reduced over processes, so two processes give the
    one-process codes of the global batch.

    Args:
        scores: ``(B, K)`` local samples by prototypes. epsilon: 0.05 (paper). iterations: 3 (paper).
        score_bound: an upper bound on ``|scores|`` the caller guarantees, or ``None`` (unknown: log domain).

    Shapes:
        ``scores``: ``(B, K)`` -> ``(B, K)`` codes, rows summing to 1.
    """
    if scores.dim() != 2:
        raise ValueError(f"sinkhorn_knopp needs (B, K) scores, got {tuple(scores.shape)}")
    if epsilon <= 0 or iterations < 1:
        raise ValueError(f"sinkhorn_knopp needs epsilon > 0 and iterations >= 1, got {epsilon}, {iterations}")
    if score_bound is not None and 2 * score_bound / epsilon <= DIRECT_EXPONENT_RANGE:
        return _direct_sinkhorn(scores, epsilon, iterations, score_bound)
    return _log_sinkhorn(scores, epsilon, iterations)


# Prototypes are re-normalised after every step, so between two normalisations the optimizer moves them off
# the unit sphere by a learning-rate-sized amount; this margin keeps the direct Sinkhorn's bound honest
COSINE_SCORE_BOUND = 1.05


class SwAVLoss(nn.Module):
    """Swapped prediction: the codes of each large crop are predicted from every other crop.

    For two views this is ``-1/2 (sum q_a log p_b + sum q_b log p_a)`` averaged over samples. With multi-crop
    (paper section 3.2), codes come only from the large (high-resolution) crops; each is predicted from the
    other large crops and from every small crop, averaged over the ``V - 1`` predicting crops and over the
    large crops (``main_swav.py``; lightly's ``SwaVLoss`` gives the same numbers). With a queue (section 4.3),
    the scores of the queued embeddings of earlier batches join each large crop's Sinkhorn and their codes
    are dropped afterwards.

    Args:
        temperature: softmax temperature ``T`` (0.1). epsilon: Sinkhorn ``epsilon`` (0.05).
        sinkhorn_iterations: (3). score_bound: bound on ``|scores|`` that enables the direct Sinkhorn
            (:data:`COSINE_SCORE_BOUND` for the cosine scores of :class:`Prototypes`; ``None``: log domain).

    Shapes:
        ``scores_a``, ``scores_b``: ``(B, K)`` cosine scores to the prototypes -> scalar.
        :meth:`multi_crop`: lists of ``(B, K)`` large- and small-crop scores, optional list of ``(Q, K)``
        queue scores (one per large crop) -> scalar.
    """

    def __init__(
        self, temperature: float = 0.1, epsilon: float = 0.05, sinkhorn_iterations: int = 3,
        score_bound: float | None = COSINE_SCORE_BOUND,
    ):
        super().__init__()
        if temperature <= 0 or epsilon <= 0 or sinkhorn_iterations < 1:
            raise ValueError("SwAV needs temperature > 0, epsilon > 0 and sinkhorn_iterations >= 1")
        self.temperature, self.epsilon, self.iterations = temperature, epsilon, sinkhorn_iterations
        self.score_bound = score_bound

    def codes(self, scores: Tensor, queue_scores: Tensor | None = None) -> Tensor:
        """Sinkhorn codes of ``scores`` ``(B, K)``, computed together with ``queue_scores`` ``(Q, K)`` if given."""
        scores = scores.detach()
        if queue_scores is None:
            return sinkhorn_knopp(scores, self.epsilon, self.iterations, score_bound=self.score_bound)
        joint = torch.cat([scores, queue_scores.detach().to(scores.dtype)])
        return sinkhorn_knopp(joint, self.epsilon, self.iterations, score_bound=self.score_bound)[: scores.shape[0]]

    def forward(self, scores_a: Tensor, scores_b: Tensor) -> Tensor:
        if scores_a.shape != scores_b.shape or scores_a.dim() != 2:
            raise ValueError(f"SwAV needs two (B, K) score tensors of equal shape, got {tuple(scores_a.shape)} and {tuple(scores_b.shape)}")
        return self.multi_crop([scores_a, scores_b])

    def multi_crop(
        self, large: list[Tensor], small: list[Tensor] | tuple = (), queue: list[Tensor] | None = None
    ) -> Tensor:
        if len(large) < 1 or len(large) + len(small) < 2:
            raise ValueError(f"SwAV needs at least one large crop and two crops in all, got {len(large)} large and {len(small)} small")
        shape = large[0].shape
        if any(s.dim() != 2 or s.shape[1:] != shape[1:] or s.shape[0] != shape[0] for s in (*large, *small)):
            raise ValueError(
                "SwAV needs (B, K) scores with the same B and K for every crop, got "
                f"{[tuple(s.shape) for s in (*large, *small)]}"
            )
        if queue is not None and len(queue) != len(large):
            raise ValueError(f"SwAV needs one queue score tensor per large crop, got {len(queue)} for {len(large)}")
        codes = [self.codes(scores, None if queue is None else queue[i]) for i, scores in enumerate(large)]
        crops = (*large, *small)
        # the cross-entropy is linear in its target: each crop predicts the sum of the other large crops' codes
        # in one fused soft-target cross-entropy, instead of one log-softmax product per (code, crop) pair
        total = 0.0
        for v, scores in enumerate(crops):
            others = [q for i, q in enumerate(codes) if i != v]
            if not others:
                continue
            target = others[0] if len(others) == 1 else torch.stack(others).sum(dim=0)
            total = total + F.cross_entropy(scores.float() / self.temperature, target)
        return total / (len(large) * (len(crops) - 1))


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
