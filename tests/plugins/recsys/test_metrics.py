"""Full-ranking Recall@K / NDCG@K against a brute-force reference (SSLRec protocol, ties broken by item index)."""

import math

import pytest
import torch

from omnissl_recsys.metrics import evaluate_ranking, target_ranks


def brute_force(scores, targets, exclude, ks):
    """Per user: stable sort of (-score, item) over non-excluded items; SSLRec recall (hits / n) and NDCG."""
    num_users, num_items = scores.shape
    sums = {f"{m}@{k}": 0.0 for m in ("recall", "ndcg") for k in ks}
    evaluated = 0
    for u in range(num_users):
        held = {int(i) for uu, i in targets.tolist() if uu == u}
        if not held:
            continue
        evaluated += 1
        masked = {int(i) for uu, i in exclude.tolist() if uu == u}
        candidates = [i for i in range(num_items) if i not in masked]
        ranking = sorted(candidates, key=lambda i: (-float(scores[u, i]), i))
        for k in ks:
            top = ranking[:k]
            hits = [r for r, i in enumerate(top) if i in held]
            sums[f"recall@{k}"] += len(hits) / len(held)
            dcg = sum(1 / math.log2(r + 2) for r in hits)
            idcg = sum(1 / math.log2(r + 2) for r in range(min(len(held), k)))
            sums[f"ndcg@{k}"] += dcg / idcg
    out = {name: v / max(1, evaluated) for name, v in sums.items()}
    out["users"] = evaluated
    out["users_without_targets"] = num_users - evaluated
    return out


def random_case(seed, num_users=13, num_items=30, levels=4):
    g = torch.Generator().manual_seed(seed)
    # few distinct score levels: many ties, including at the K-th position
    scores = torch.randint(levels, (num_users, num_items), generator=g).float()
    pairs = torch.stack(torch.meshgrid(torch.arange(num_users), torch.arange(num_items), indexing="ij"), -1).reshape(-1, 2)
    which = torch.rand(pairs.shape[0], generator=g)
    exclude, targets = pairs[which < 0.2], pairs[(which >= 0.2) & (which < 0.3)]
    targets = targets[targets[:, 0] % 4 != 1]  # users 1, 5, 9 have no held-out items
    return scores, targets, exclude


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("batch_elements", [30, 1 << 20])
def test_matches_brute_force_with_ties_and_users_without_targets(seed, batch_elements):
    scores, targets, exclude = random_case(seed, levels=3 + seed % 3)
    ks = [3, 10]
    got = evaluate_ranking(lambda u: scores[u], scores.shape[0], scores.shape[1], targets, exclude, ks, max_batch_elements=batch_elements)
    want = brute_force(scores, targets, exclude, ks)
    assert got["users_without_targets"] == want["users_without_targets"] >= 3
    assert got["users"] == want["users"]
    for name in ("recall@3", "recall@10", "ndcg@3", "ndcg@10"):
        assert got[name] == pytest.approx(want[name], abs=1e-6), name


def test_continuous_scores_match_brute_force():
    g = torch.Generator().manual_seed(7)
    scores = torch.randn(9, 50, generator=g)
    _, targets, exclude = random_case(7, num_users=9, num_items=50)
    got = evaluate_ranking(lambda u: scores[u], 9, 50, targets, exclude, [5, 20])
    want = brute_force(scores, targets, exclude, [5, 20])
    for name in ("recall@5", "recall@20", "ndcg@5", "ndcg@20"):
        assert got[name] == pytest.approx(want[name], abs=1e-6)


def test_recall_divides_by_number_of_targets_not_k():
    # 30 held-out items, all ranked on top: SSLRec recall@10 = 10/30 (not 10/min(10, 30) = 1); NDCG@10 = 1
    scores = torch.arange(40, 0, -1).float().unsqueeze(0)
    targets = torch.stack([torch.zeros(30, dtype=torch.long), torch.arange(30)], 1)
    got = evaluate_ranking(lambda u: scores[u], 1, 40, targets, torch.zeros(0, 2, dtype=torch.long), [10])
    assert got["recall@10"] == pytest.approx(10 / 30)
    assert got["ndcg@10"] == pytest.approx(1.0)


def test_target_ranks_break_ties_by_item_index():
    scores = torch.tensor([[1.0, 2.0, 2.0, 2.0, 0.0]])
    ranks = target_ranks(scores, torch.tensor([[3, 1, 0, 4, -1]]), k=3)
    assert ranks.tolist() == [[2, 0, 3, 3, 3]]  # items 1, 2, 3 tie at the top; 0 and 4 fall outside k=3
