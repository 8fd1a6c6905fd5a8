"""Contract suite, objectives against their formulas, views' semantics and a short engine run."""

import math

import pytest
import torch
import torch.nn.functional as F

from omnissl.plugins import PluginManager
from omnissl.testing.contracts import check_plugin
from omnissl_recsys.datasets import GeneratedConfig, generate
from omnissl_recsys.encoders import LightGCN, LightGCNConfig, TwoTower, TwoTowerConfig
from omnissl_recsys.objectives import TwoTowerObjective, TwoTowerObjectiveConfig, bpr_loss, info_nce, info_nce_of_ids
from omnissl_recsys.views import FeatureMasking, FeatureMaskingConfig, GraphDropout, GraphDropoutConfig, sample_negatives


def test_contract_suite():
    ran = check_plugin(PluginManager(), "recsys")
    for name in ("recsys.bpr", "recsys.sgl", "recsys.simgcl", "recsys.xsimgcl", "recsys.two_tower", "recsys.bm3"):
        assert f"objective[{name}]" in ran
    for name in ("recsys.movielens", "recsys.csv", "recsys.sparse", "recsys.generated"):  # each built from its example files
        assert f"dataset[{name}]" in ran


@pytest.fixture(scope="module")
def source():
    return generate(GeneratedConfig(num_users=60, num_items=80, interactions_per_user=12))


def test_bpr_matches_rendle_formula():
    # BPR-Opt (Rendle et al. 2009, eq. 4): -ln sigma(x_ui - x_uj), here averaged over the batch and negatives
    u, p, n = torch.tensor([[1.0, 0.0]]), torch.tensor([[2.0, 1.0]]), torch.tensor([[0.5, 3.0]])
    tokens = torch.stack([u, p, n], 1)
    assert bpr_loss(tokens).item() == pytest.approx(-math.log(1 / (1 + math.exp(-(2.0 - 0.5)))))


def test_info_nce_matches_sgl_formula():
    # SGL eq. 9: -log exp(s(z'_u, z''_u)/t) / sum_v exp(s(z'_u, z''_v)/t), cosine s, averaged over anchors
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    s = F.normalize(a, dim=1) @ F.normalize(b, dim=1).T / 0.2
    want = torch.stack([-(s[i, i] - torch.logsumexp(s[i], 0)) for i in range(5)]).mean()
    assert info_nce(a, b, 0.2).item() == pytest.approx(want.item(), rel=1e-5)


def test_negatives_avoid_training_positives(source):
    users = source.interactions["train"][:, 0]
    neg = sample_negatives(users, source.num_items, 4, torch.Generator().manual_seed(0), source.train_keys, retries=3)
    keys = users.unsqueeze(1) * source.num_items + neg
    is_pos = torch.isin(keys, source.train_keys).float().mean()
    plain = sample_negatives(users, source.num_items, 4, torch.Generator().manual_seed(0), None)
    plain_pos = torch.isin(users.unsqueeze(1) * source.num_items + plain, source.train_keys).float().mean()
    assert is_pos < 0.2 * plain_pos


def test_edge_dropout_drops_ratio_of_edges(source):
    views = GraphDropout(source, GraphDropoutConfig(kind="edge", ratio=0.3))
    out = views(source.batch(torch.arange(16)), torch.Generator().manual_seed(0))
    keep_a, keep_b = out.inputs[1]["edge_keep"], out.inputs[2]["edge_keep"]
    assert keep_a.float().mean() == pytest.approx(0.7, abs=0.05)
    assert not torch.equal(keep_a, keep_b)
    enc = LightGCN(source.num_users, source.num_items, source.graph, LightGCNConfig(dim=8, num_layers=2))
    users, items = enc.tables(out.inputs[1])
    full_users, _ = enc.tables()
    assert users.shape == full_users.shape and not torch.allclose(users, full_users)


@pytest.mark.parametrize("mode", ["random", "correlated"])
def test_feature_masking_views_are_complementary_and_uniform(source, mode):
    views = FeatureMasking(source, FeatureMaskingConfig(mode=mode, value_dropout=0.0, ssl_batch_size=4000))
    out = views(source.batch(torch.arange(8)), torch.Generator().manual_seed(1))
    a, b = out.inputs[1], out.inputs[2]
    assert torch.equal(a["items"], b["items"])
    assert not (a["keep"] & b["keep"]).any() and (a["keep"] | b["keep"]).all()  # complementary field sets
    # SSL items are uniform over the catalogue, unlike the popularity-skewed training positives
    counts = torch.bincount(a["items"], minlength=source.num_items).float()
    assert counts.std() / counts.mean() < 0.3
    if mode == "correlated":
        # seed field 'category' masks the field most informative about it: the id (MI(id, g) = H(g))
        fields = source.features.slot_field
        per_item = [set(fields[~k].tolist()) for k in a["keep"]]
        assert all(len(s) == source.features.num_fields // 2 for s in per_item)


def test_logq_correction_lowers_popular_items_logits(source):
    enc = TwoTower(source.num_users, source.features.tokens, source.features.slot_field, source.features.vocab_size, TwoTowerConfig(dim=8, token_dim=4, hidden_dim=8))
    batch = {"user": torch.tensor([0, 1]), "pos": torch.tensor([2, 3])}
    log_pop = torch.zeros(source.num_items)
    log_pop[3] = math.log(0.5)  # item 3 popular: its in-batch logit gets -log p = +0.69 less penalty... i.e. subtracts log p
    from omnissl.interfaces import Views

    with_q = TwoTowerObjective(log_pop, TwoTowerObjectiveConfig(ssl_weight=0.0, temperature=1.0))
    without = TwoTowerObjective(log_pop, TwoTowerObjectiveConfig(ssl_weight=0.0, temperature=1.0, logq=False))
    u, v = enc.user_vectors(batch["user"]), enc.item_vectors(batch["pos"])
    logits = u @ v.T - log_pop[batch["pos"]].unsqueeze(0)  # Yi et al. 2019, eq. 3: s_c(x, y) = s(x, y) - log p_j
    want = F.cross_entropy(logits, torch.arange(2))
    assert with_q(enc, Views(inputs=[batch])).loss.item() == pytest.approx(want.item(), rel=1e-5)
    assert without(enc, Views(inputs=[batch])).loss.item() != pytest.approx(want.item(), rel=1e-5)


def test_engine_trains_lightgcn_beyond_popularity(tmp_path):
    from omnissl.engine import run_config

    cfg = {
        "seed": 0,
        "tasks": [{
            "name": "gen",
            "data": {"name": "recsys.generated", "num_users": 200, "num_items": 200, "num_categories": 8, "interactions_per_user": 20},
            "encoder": {"name": "recsys.lightgcn", "dim": 16, "num_layers": 2},
            "views": {"name": "recsys.sgl_dropout", "ratio": 0.1},
            "objective": {"name": "recsys.sgl", "ssl_weight": 0.05},
            "eval": [{"name": "recsys.ranking", "baselines": ["popularity", "random"]}],
        }],
        "engine": {"epochs": 80, "batch_size": 512, "optimizer": {"name": "adamw", "lr": 0.03, "weight_decay": 0.0}, "device": "cpu"},
        "logging": {"out_dir": str(tmp_path / "run"), "log_every": 20, "progress": False},
    }
    result = run_config(cfg)
    m = result.evals[0].metrics
    assert m["test/recall@20"] > m["random/test/recall@20"]
    assert m["test/recall@20"] > m["popularity/test/recall@20"]


def test_info_nce_counts_repeated_nodes_once():
    # SGL/SimGCL reference codes contrast the batch's unique nodes: duplicates are neither anchors nor negatives
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    ids = torch.tensor([5, 3, 5, 1, 3, 7])
    first = [0, 1, 3, 5]
    assert info_nce(a, b, 0.2, ids).item() == pytest.approx(info_nce(a[first], b[first], 0.2).item(), rel=1e-6)


def test_info_nce_of_ids_is_the_contrast_of_the_unique_ids():
    """SELFRec ``XSimGCL.cal_cl_loss``: ``InfoNCE(view1[unique(idx)], view2[unique(idx)])``; the table path
    (fewer table rows than batch rows) and the batch path give that same value."""
    g = torch.Generator().manual_seed(4)
    table_a, table_b = torch.randn(7, 5, generator=g), torch.randn(7, 5, generator=g)
    ids = torch.tensor([6, 2, 2, 0, 6, 6, 5, 2, 0, 3])  # 10 rows > 7 table rows: the table path
    unique = torch.unique(ids)
    want = info_nce(table_a[unique], table_b[unique], 0.2)
    assert info_nce_of_ids(table_a, table_b, ids, 0.2).item() == pytest.approx(want.item(), rel=1e-5)
    short = ids[:5]  # 5 rows < 7: the batch path
    want = info_nce(table_a[torch.unique(short)], table_b[torch.unique(short)], 0.2)
    assert info_nce_of_ids(table_a, table_b, short, 0.2).item() == pytest.approx(want.item(), rel=1e-5)


def test_symmetric_spmm_gradient_matches_torch_sparse_mm(source):
    """LightGCN's propagation skips forming ``A^T`` in the backward; ``A_hat`` is symmetric so nothing changes."""
    from omnissl_recsys.graph import symmetric_spmm

    adj = source.graph.normalized(torch.rand(source.graph.num_edges, generator=torch.Generator().manual_seed(0)) > 0.3)
    x = torch.randn(adj.shape[0], 8, requires_grad=True)
    w = torch.randn(adj.shape[0], 8)
    (symmetric_spmm(adj, x) * w).sum().backward()
    ours = x.grad.clone()
    x.grad = None
    (torch.sparse.mm(adj, x) * w).sum().backward()
    torch.testing.assert_close(ours, x.grad)
    torch.testing.assert_close(symmetric_spmm(adj, x), torch.sparse.mm(adj, x))


@pytest.mark.parametrize("encoder", ["recsys.two_tower", "recsys.lightgcn"])
def test_ranking_reports_the_random_encoder_beside_the_model_by_default(source, encoder):
    """Every ranking result sits beside popularity (the surface feature) and a random encoder of the run's
    config; the random row is that encoder's own ranking, not the model's."""
    from omnissl.evaluation.api import EvalRun
    from omnissl.specs import BuildContext
    from omnissl_recsys.evaluators import RankingConfig, RankingEvaluator

    registry = PluginManager().registry

    def build(seed):
        torch.manual_seed(seed)
        return registry.get("encoders", encoder).build({"dim": 8}, BuildContext(data=source))

    def evaluate(cfg, model, random_seed):
        return RankingEvaluator(cfg)(EvalRun(encoder=model, data=source, device=torch.device("cpu"), random_encoder=lambda: build(random_seed)))

    result = evaluate(RankingConfig(ks=[5]), build(0), random_seed=1)
    alone = evaluate(RankingConfig(ks=[5], baselines=[]), build(1), random_seed=2)  # the random encoder as the model
    for split in ("val", "test"):
        assert result.metrics[f"random/{split}/recall@5"] == alone.metrics[f"{split}/recall@5"]
        assert result.metrics[f"random/{split}/ndcg@5"] == alone.metrics[f"{split}/ndcg@5"]
        assert f"popularity/{split}/recall@5" in result.metrics
    assert result.metrics["test/ndcg@5"] != result.metrics["random/test/ndcg@5"]
    assert [row["representation"] for row in result.rows] == ["model", "model", "popularity", "popularity", "random encoder", "random encoder"]
