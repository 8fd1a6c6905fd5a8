"""RankMe and embedding-std collapse monitors.

Source: Garrido et al. 2023, eq. (1): ``RankMe = exp(-sum p_k log p_k)``, ``p_k = sigma_k / ||sigma||_1 + 1e-7``;
an embedding whose nonzero singular values are all equal has RankMe equal to its rank.
"""

import pytest
import torch

from omnissl.evaluation.monitors import collapse_metrics, embedding_std, rankme


@pytest.mark.parametrize("rank", [1, 5, 17, 32])
def test_rankme_returns_the_rank_of_a_known_rank_embedding(rank):
    g = torch.Generator().manual_seed(rank)
    u, _ = torch.linalg.qr(torch.randn(200, rank, generator=g, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(32, rank, generator=g, dtype=torch.float64))
    z = (u @ v.T * 3.0).float()  # singular values all equal to 3
    assert abs(float(rankme(z)) - rank) <= 0.01 * rank


def test_rankme_of_a_decaying_spectrum_matches_the_formula():
    g = torch.Generator().manual_seed(0)
    u, _ = torch.linalg.qr(torch.randn(100, 8, generator=g, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(8, 8, generator=g, dtype=torch.float64))
    s = torch.tensor([8, 4, 2, 1, 0.5, 0.25, 0.1, 0.05], dtype=torch.float64)
    z = (u * s) @ v.T
    p = s / s.sum() + 1e-7
    assert abs(float(rankme(z.float())) - float(torch.exp(-(p * p.log()).sum()))) < 1e-3


def test_rankme_bad_input_and_collapse_metrics():
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        rankme(torch.randn(3, 4, 5))
    collapsed = torch.ones(50, 16)
    assert float(embedding_std(collapsed)) < 1e-6
    assert float(rankme(collapsed)) < 1.01
    spread = torch.randn(4000, 16, generator=torch.Generator().manual_seed(0))
    metrics = collapse_metrics(spread)
    assert set(metrics) == {"rankme", "embedding_std"}
    assert abs(float(metrics["embedding_std"]) - 16**-0.5) < 0.01
    assert float(metrics["rankme"]) > 15
