"""MoCHi: hard negative mixing for contrastive learning.

Reference: Kalantidis et al., "Hard Negative Mixing for Contrastive Learning", NeurIPS 2020, section 4.
For a query ``q`` whose negatives are ranked by similarity, take the ``N`` hardest ones and synthesise

- ``s`` negatives ``h = normalise(a * n_i + (1 - a) * n_j)`` with ``n_i, n_j`` drawn from the hardest
  ``N`` and ``a ~ U(0, 1)`` (eq. 3);
- ``s'`` harder negatives ``h' = normalise(b * q + (1 - b) * n_j)`` with ``b ~ U(0, 0.5)`` so the query
  never dominates (eq. 4).

Synthetic points are detached, as in the paper (they are new negatives, not paths for gradients). Works with
NT-Xent's in-batch negatives (:class:`MoCHiNTXentLoss`) and with a MoCo memory queue
(:class:`MoCHiQueueLoss`). Random draws come from an explicit generator and are drawn for every row of the
*global* batch, then sliced, so two processes give exactly the one-process loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from omnissl import distributed
from omnissl.distributed import gather_with_grad
from omnissl.losses.moco import moco_logits


def mix_hard_negatives(
    query: Tensor,
    candidates: Tensor,
    scores: Tensor,
    num_hard: int,
    num_mix: int,
    num_query_mix: int,
    generator: torch.Generator | None,
    row_ids: Tensor,
    total_rows: int,
) -> Tensor:
    """Synthetic hard negatives for each row (MoCHi eqs. 3 and 4), detached.

    Args:
        query: ``(R, D)`` L2-normalised anchors.
        candidates: ``(C, D)`` L2-normalised negatives shared by every row.
        scores: ``(R, C)`` similarities of each anchor to each candidate; non-negatives set to ``-inf``.
        num_hard: ``N``, the hardest negatives mixed (clamped to the number of valid negatives).
        num_mix, num_query_mix: ``s`` and ``s'``.
        generator: draws the pairs and coefficients; ``None`` uses the global generator.
        row_ids: ``(R,)`` position of each row among ``total_rows`` (draws are made for every global row
            and sliced, so the result does not depend on how rows are split across processes).

    Shapes:
        -> ``(R, s + s', D)``.
    """
    if not num_mix and not num_query_mix:
        # nothing to mix: skip the top-k and the gather of every hard row
        return query.new_zeros(query.shape[0], 0, query.shape[1])
    with torch.no_grad():
        n = min(num_hard, candidates.shape[0])
        hard_idx = scores.topk(n, dim=1).indices  # (R, N), hardest first
        hard = candidates[hard_idx]  # (R, N, D)
        device = query.device
        out = []
        if num_mix:
            pairs = torch.randint(n, (total_rows, num_mix, 2), generator=generator, device=device)[row_ids]
            alpha = torch.rand(total_rows, num_mix, 1, generator=generator, device=device)[row_ids]
            n_i = torch.gather(hard, 1, pairs[..., 0:1].expand(-1, -1, hard.shape[-1]))
            n_j = torch.gather(hard, 1, pairs[..., 1:2].expand(-1, -1, hard.shape[-1]))
            out.append(F.normalize(alpha * n_i + (1 - alpha) * n_j, dim=-1))
        if num_query_mix:
            pick = torch.randint(n, (total_rows, num_query_mix, 1), generator=generator, device=device)[row_ids]
            # b in (0, 0.5): the query's share stays below the negative's (paper, section 4.2)
            beta = 0.5 * torch.rand(total_rows, num_query_mix, 1, generator=generator, device=device)[row_ids]
            n_j = torch.gather(hard, 1, pick.expand(-1, -1, hard.shape[-1]))
            out.append(F.normalize(beta * rearrange(query, "r d -> r 1 d") + (1 - beta) * n_j, dim=-1))
        return torch.cat(out, dim=1)


def _check_counts(num_hard: int, num_mix: int, num_query_mix: int, temperature: float) -> None:
    if temperature <= 0:
        raise ValueError(f"MoCHi temperature must be > 0, got {temperature}")
    if num_hard < 1 or num_mix < 0 or num_query_mix < 0:
        raise ValueError(
            f"MoCHi needs num_hard >= 1 and non-negative num_mix / num_query_mix, got N={num_hard}, "
            f"s={num_mix}, s'={num_query_mix}"
        )


class MoCHiNTXentLoss(nn.Module):
    """NT-Xent (SimCLR) whose in-batch negatives are extended with MoCHi's synthetic hard negatives.

    Each of the ``2B`` local anchors sees the ``2G - 2`` other views of the global batch plus ``s + s'``
    synthetic negatives mixed from its ``N`` hardest in-batch negatives. With ``s = s' = 0`` it equals
    :class:`omnissl.losses.ntxent.NTXentLoss`.

    Args:
        temperature: ``t`` (0.2). num_hard: ``N`` (64). num_mix: ``s`` (32). num_query_mix: ``s'`` (16).

    Shapes:
        ``z_a``, ``z_b``: ``(B, D)`` -> scalar.
    """

    def __init__(self, temperature: float = 0.2, num_hard: int = 64, num_mix: int = 32, num_query_mix: int = 16):
        super().__init__()
        _check_counts(num_hard, num_mix, num_query_mix, temperature)
        self.temperature, self.num_hard, self.num_mix, self.num_query_mix = temperature, num_hard, num_mix, num_query_mix

    def forward(self, z_a: Tensor, z_b: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if z_a.shape != z_b.shape or z_a.dim() != 2:
            raise ValueError(f"MoCHi NT-Xent needs two (B, D) views of equal shape, got {tuple(z_a.shape)} and {tuple(z_b.shape)}")
        if z_a.shape[0] * distributed.world_size() < 2:
            raise ValueError("MoCHi NT-Xent needs at least 2 samples in the global batch to have negatives")
        z_a, z_b = F.normalize(z_a.float(), dim=1), F.normalize(z_b.float(), dim=1)
        local, offset = z_a.shape[0], distributed.rank() * z_a.shape[0]
        all_a, all_b = gather_with_grad(z_a), gather_with_grad(z_b)
        global_n = all_a.shape[0]
        columns = torch.cat([all_a, all_b], dim=0)  # (2G, D)
        rows = torch.cat([z_a, z_b], dim=0)  # (2B, D)
        logits = rows @ columns.T / self.temperature
        local_idx = torch.arange(local, device=z_a.device) + offset
        self_idx = torch.cat([local_idx, local_idx + global_n])
        positive_idx = torch.cat([local_idx + global_n, local_idx])
        logits = logits.masked_fill(F.one_hot(self_idx, 2 * global_n).bool(), float("-inf"))
        if not self.num_mix and not self.num_query_mix:
            return F.cross_entropy(logits, positive_idx)
        negatives_only = logits.detach().masked_fill(F.one_hot(positive_idx, 2 * global_n).bool(), float("-inf"))
        synthetic = mix_hard_negatives(
            rows.detach(), columns.detach(), negatives_only, min(self.num_hard, 2 * global_n - 2),
            self.num_mix, self.num_query_mix, generator, self_idx, 2 * global_n,
        )
        extra = torch.einsum("rd,rsd->rs", rows, synthetic) / self.temperature
        return F.cross_entropy(torch.cat([logits, extra], dim=1), positive_idx)


class MoCHiQueueLoss(nn.Module):
    """MoCo-v2 InfoNCE against a memory queue, with MoCHi's synthetic hard negatives.

    ``forward(q, k, queue)``: logits ``[q.k, q.queue, q.synthetic] / t``, target the key. The queue and the
    keys carry no gradient (they come from the momentum encoder); the queue must hold unit rows, as
    :class:`omnissl.nn.FeatureQueue` does when fed normalised keys. With ``s = s' = 0`` it is exactly
    :class:`omnissl.losses.moco.MoCoLoss` and costs the same (no top-k is run).

    Args:
        temperature: ``t`` (0.2, MoCo v2). num_hard: ``N`` (1024, paper). num_mix: ``s`` (1024).
        num_query_mix: ``s'`` (256).

    Shapes:
        ``q``, ``k``: ``(B, D)``; ``queue``: ``(K, D)`` -> scalar.
    """

    def __init__(self, temperature: float = 0.2, num_hard: int = 1024, num_mix: int = 1024, num_query_mix: int = 256):
        super().__init__()
        _check_counts(num_hard, num_mix, num_query_mix, temperature)
        self.temperature, self.num_hard, self.num_mix, self.num_query_mix = temperature, num_hard, num_mix, num_query_mix

    def forward(self, q: Tensor, k: Tensor, queue: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if q.shape != k.shape or q.dim() != 2 or queue.dim() != 2 or queue.shape[1] != q.shape[1]:
            raise ValueError(
                f"MoCHi queue loss needs q, k (B, D) and queue (K, D), got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(queue.shape)}"
            )
        q, logits = moco_logits(q, k, queue, self.temperature)
        local = q.shape[0]
        target = torch.zeros(local, dtype=torch.long, device=q.device)
        if self.num_mix or self.num_query_mix:
            row_ids = torch.arange(local, device=q.device) + distributed.rank() * local
            # the ranking of negatives by q.queue / t is the ranking by similarity
            synthetic = mix_hard_negatives(
                q.detach(), queue.detach().float(), logits[:, 1:].detach(), self.num_hard, self.num_mix,
                self.num_query_mix, generator, row_ids, local * distributed.world_size(),
            )
            logits = torch.cat([logits, torch.einsum("rd,rsd->rs", q, synthetic) / self.temperature], dim=1)
        return F.cross_entropy(logits, target)
