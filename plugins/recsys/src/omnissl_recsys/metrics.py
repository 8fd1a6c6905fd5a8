"""Full-ranking Recall@K and NDCG@K, computed in user batches on the device.

Protocol (SSLRec, Ren et al. 2024, ``trainer/metrics.py``): every item of the catalogue is ranked for each
user, the user's training items (and, for the test split, validation items) are excluded, Recall@K is the
number of held-out items in the top K divided by the number of held-out items (not by ``min(K, n)``), and
NDCG@K divides the DCG of the hits by the ideal DCG of ``min(n, K)`` hits. Users without held-out items are
excluded from the means and counted. Ties are broken by item index (lower first), i.e. the ranking is
the stable descending sort of the scores; ranks are computed exactly from ``topk`` plus a tie count.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def target_ranks(scores: Tensor, targets: Tensor, k: int) -> Tensor:
    """0-based rank of each target item in the stable descending order of ``scores``; ``k`` where ``>= k``.

    ``rank(t) = #{j : s_j > s_t} + #{j < t : s_j = s_t}``. Only ranks below ``k`` are resolved: ``topk``
    gives every item scoring above the k-th value ``s_k``; ties at a target's own score are counted among the
    top-k entries when ``s_t > s_k`` and over the whole row when ``s_t = s_k``.

    Shapes: ``scores (B, I)``, ``targets (B, T)`` long with ``-1`` padding -> ``(B, T)`` long (``k`` for padding).
    """
    k = min(k, scores.shape[1])
    vals, idx = scores.topk(k, dim=1)  # (B, k), sorted descending
    kth = vals[:, -1:]
    valid = targets >= 0
    t = targets.clamp_min(0)
    s = scores.gather(1, t)  # (B, T)
    above = (vals.unsqueeze(1) > s.unsqueeze(2)).sum(-1)
    ties_top = ((vals.unsqueeze(1) == s.unsqueeze(2)) & (idx.unsqueeze(1) < t.unsqueeze(2))).sum(-1)
    at_kth = (scores == kth).int()
    ties_row = (torch.cumsum(at_kth, dim=1) - at_kth).gather(1, t)  # ties strictly before the target
    rank = above + torch.where(s > kth, ties_top, ties_row)
    rank = torch.where((s >= kth) & valid, rank, torch.full_like(rank, k))
    return rank.clamp(max=k)


def recall_ndcg(ranks: Tensor, num_targets: Tensor, ks: list[int]) -> dict[str, Tensor]:
    """Per-user Recall@K and NDCG@K from target ranks.

    Shapes: ``ranks (B, T)`` (``>= max(ks)`` means a miss), ``num_targets (B,)`` -> ``{name: (B,)}``
    (users with no targets get 0 and must be masked by the caller).
    """
    out = {}
    n = num_targets.clamp_min(1).float()
    gain = 1.0 / torch.log2(ranks.float() + 2.0)
    for k in ks:
        hit = ranks < k
        out[f"recall@{k}"] = hit.sum(1).float() / n
        discounts = 1.0 / torch.log2(torch.arange(k, device=ranks.device).float() + 2.0)
        ideal = torch.cumsum(discounts, 0)[(num_targets.clamp(1, k) - 1)]
        out[f"ndcg@{k}"] = (gain * hit).sum(1) / ideal
    return out


def padded_by_user(pairs: Tensor, num_users: int) -> tuple[Tensor, Tensor]:
    """``(U, T)`` item lists padded with -1 and ``(U,)`` counts from ``(E, 2)`` ``[user, item]`` pairs."""
    counts = torch.bincount(pairs[:, 0], minlength=num_users)
    order = torch.argsort(pairs[:, 0], stable=True)
    users, items = pairs[order, 0], pairs[order, 1]
    start = torch.cumsum(counts, 0) - counts
    width = max(1, int(counts.max()) if counts.numel() else 1)
    out = torch.full((num_users, width), -1, dtype=torch.long, device=pairs.device)
    out[users, torch.arange(users.shape[0], device=pairs.device) - start[users]] = items
    return out, counts


def evaluate_ranking(
    score_fn: Callable[[Tensor], Tensor],
    num_users: int,
    num_items: int,
    targets: Tensor,
    exclude: Tensor,
    ks: list[int] = (10, 20),
    max_batch_elements: int = 1 << 25,
    users: Tensor | None = None,
) -> dict[str, float]:
    """Mean Recall@K / NDCG@K over users with targets, ranking all items in batches of users.

    Args:
        score_fn: ``(B,) user indices -> (B, I)`` scores.
        targets, exclude: ``(E, 2)`` ``[user, item]`` held-out pairs and pairs masked out of the ranking.
        max_batch_elements: users per batch ``= max(1, max_batch_elements // I)`` (fixed memory).
        users: evaluate only these users (default: all).

    Returns ``{"recall@K": ..., "ndcg@K": ..., "users": evaluated, "users_without_targets": excluded}``.
    """
    ks = sorted(ks)
    device = targets.device
    target_lists, counts = padded_by_user(targets, num_users)
    ex_order = torch.argsort(exclude[:, 0], stable=True)
    ex_users, ex_items = exclude[ex_order, 0], exclude[ex_order, 1]
    ex_ptr = torch.zeros(num_users + 1, dtype=torch.long)
    ex_ptr[1:] = torch.cumsum(torch.bincount(ex_users.cpu(), minlength=num_users), 0)
    users = torch.arange(num_users, device=device) if users is None else users.to(device)
    with_targets = users[counts[users] > 0]
    skipped = int(users.numel() - with_targets.numel())
    sums = {f"{m}@{k}": torch.zeros((), device=device, dtype=torch.float64) for m in ("recall", "ndcg") for k in ks}
    step = max(1, max_batch_elements // max(1, num_items))
    mask_ptr = ex_ptr.tolist()
    for start in range(0, with_targets.numel(), step):
        batch = with_targets[start : start + step]
        scores = score_fn(batch).float().contiguous()  # expanded (shared-storage) scores must not be masked in place
        # rows of the excluded pairs of these users: contiguous runs of the user-sorted exclusion list
        spans = [(mask_ptr[u], mask_ptr[u + 1]) for u in batch.tolist()]
        sel = torch.cat([torch.arange(a, b) for a, b in spans]) if spans else torch.zeros(0, dtype=torch.long)
        lens = torch.tensor([b - a for a, b in spans])
        rows = torch.repeat_interleave(torch.arange(batch.numel()), lens).to(device)
        scores[rows, ex_items[sel.to(device)]] = float("-inf")
        ranks = target_ranks(scores, target_lists[batch], ks[-1])
        for name, value in recall_ndcg(ranks, counts[batch], ks).items():
            sums[name] += value.double().sum()
    n = max(1, with_targets.numel())
    out = {name: float(v) / n for name, v in sums.items()}
    out["users"] = float(with_targets.numel())
    out["users_without_targets"] = float(skipped)
    return out


__all__ = ["evaluate_ranking", "padded_by_user", "recall_ndcg", "target_ranks"]
