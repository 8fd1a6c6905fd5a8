"""Graph evaluators on generated data: node probe, 10-fold graph probe, link AUC, each with baselines."""

import torch

from omnissl.evaluation.api import EvalRun
from omnissl_graph.datasets import SBMConfig, SyntheticGraphsConfig, generate_graphs, generate_sbm
from omnissl_graph.encoders import GINEncoder, GINEncoderConfig, GCNEncoder, GraphEncoderConfig
from omnissl_graph.evaluators import GraphProbe, GraphProbeConfig, LinkAUC, LinkAUCConfig, NodeProbe, NodeProbeConfig


def _run(data, make):
    torch.manual_seed(0)
    return EvalRun(encoder=make(), data=data, device=torch.device("cpu"), random_encoder=make, seed=0)


def test_node_probe_and_link_auc_on_sbm():
    data = generate_sbm(SBMConfig(num_nodes=300, num_features=8, feature_noise=0.5, holdout_edges=0.1))
    run = _run(data, lambda: GCNEncoder(8, GraphEncoderConfig(hidden_dim=16, feat_drop=0.0)))
    res = NodeProbe(NodeProbeConfig(epochs=100))(run)
    assert [r["representation"] for r in res.rows] == ["ssl", "raw features", "random encoder"]
    # communities are recoverable from the noisy features: the raw-feature probe must be far above chance (1/3)
    assert res.metrics["raw_features/test_acc"] > 0.8
    link = LinkAUC(LinkAUCConfig())(run)
    assert set(link.metrics) == {"ssl/auc", "raw_features/auc", "random_encoder/auc"}
    assert link.metrics["raw_features/auc"] > 0.6  # held-out edges are mostly inside communities
    assert data.heldout_edges.shape[1] > 0


def test_graph_probe_cross_validation():
    data = generate_graphs(SyntheticGraphsConfig(num_graphs=30))
    run = _run(data, lambda: GINEncoder(4, GINEncoderConfig(hidden_dim=8, num_layers=2)))
    res = GraphProbe(GraphProbeConfig(folds=3))(run)
    # rings vs two-community graphs differ in degree statistics: a random GIN is above chance (0.5)
    assert res.metrics["random_encoder/accuracy"] >= 0.6
    assert set(res.metrics) == {f"{rep}/{m}" for rep in ("ssl", "raw_features", "random_encoder") for m in ("accuracy", "val_accuracy", "converged")}
    assert all(0.0 <= res.metrics[f"{rep}/val_accuracy"] <= 1.0 for rep in ("ssl", "raw_features", "random_encoder"))
    assert res.metrics["ssl/converged"] == 1.0 and res.rows[0]["converged"] == "3/3"  # the SVM has no iteration limit
    assert "±" in res.rows[0]["3-fold accuracy"]


def test_graph_probe_reports_a_logistic_fit_stopped_at_its_iteration_limit(monkeypatch):
    from sklearn import linear_model

    from omnissl_graph import evaluators

    data = generate_graphs(SyntheticGraphsConfig(num_graphs=30))
    run = _run(data, lambda: GINEncoder(4, GINEncoderConfig(hidden_dim=8, num_layers=2)))
    cfg = GraphProbeConfig(folds=3, classifier="logistic", baselines=False, c_grid=[1e3])
    assert GraphProbe(cfg)(run).metrics["ssl/converged"] == 1.0
    # the same fit allowed one iteration: scikit-learn warns that it stopped at max_iter, and the probe says so
    monkeypatch.setattr(linear_model, "LogisticRegression", lambda max_iter=100: linear_model._logistic.LogisticRegression(max_iter=1))
    res = GraphProbe(cfg)(run)
    assert res.metrics["ssl/converged"] == 0.0 and res.rows[0]["converged"] == "0/3 (3 stopped at the limit)"


def test_node_probe_reports_val_accuracy_and_an_unconverged_head():
    data = generate_sbm(SBMConfig(num_nodes=200, num_features=8, feature_noise=0.5))
    run = _run(data, lambda: GCNEncoder(8, GraphEncoderConfig(hidden_dim=16, feat_drop=0.0)))
    cut = NodeProbe(NodeProbeConfig(epochs=3, baselines=False, repeats=1))(run)
    assert cut.metrics["ssl/converged"] == 0.0 and cut.rows[0]["converged"] != "1/1"
    assert 0.0 <= cut.metrics["ssl/val_acc"] <= 1.0 and "±" not in cut.rows[0]["test accuracy"]  # one repeat: no spread
    done = NodeProbe(NodeProbeConfig(epochs=3000, lr=0.05, weight_decay=1e-2, baselines=False))(run)
    assert done.metrics["ssl/converged"] == 1.0



class _Rescaled(torch.nn.Module):
    """An encoder whose node embeddings are the inner encoder's, scaled per node or per dimension (and shifted)."""

    def __init__(self, inner, node_scale=None, dim_scale=None, dim_shift=None):
        super().__init__()
        self.inner, self.output_dim = inner, inner.output_dim
        self.node_scale, self.dim_scale, self.dim_shift = node_scale, dim_scale, dim_shift

    def forward(self, batch, keep=None):
        out = self.inner(batch)
        z = out.pooled
        if self.node_scale is not None:
            z = z * self.node_scale[:, None]
        if self.dim_scale is not None:
            z = z * self.dim_scale + self.dim_shift
        return type(out)(pooled=z, layers=out.layers)


def test_node_probe_normalisations_remove_what_they_promise():
    data = generate_sbm(SBMConfig(num_nodes=300, num_features=8, feature_noise=2.0))
    torch.manual_seed(0)
    gcn = GCNEncoder(8, GraphEncoderConfig(hidden_dim=16, feat_drop=0.0))
    g = torch.Generator().manual_seed(1)
    per_node = _Rescaled(gcn, node_scale=torch.rand(300, generator=g) * 100 + 0.01)
    per_dim = _Rescaled(gcn, dim_scale=torch.rand(16, generator=g) * 100 + 0.01, dim_shift=torch.randn(16, generator=g) * 50)

    def acc(normalize, encoder):
        run = EvalRun(encoder=encoder, data=data, device=torch.device("cpu"), random_encoder=lambda: gcn, seed=0)
        return NodeProbe(NodeProbeConfig(epochs=60, baselines=False, normalize=normalize))(run).metrics["ssl/test_acc"]

    assert acc("l2", per_node) == acc("l2", gcn)  # unit-length rows: a per-node scale changes nothing
    assert abs(acc("standardize", per_dim) - acc("standardize", gcn)) <= 1 / len(data.splits["test"])  # z-scored columns: at most one test node flips
    assert acc("none", per_dim) != acc("none", gcn)  # the raw probe does see the distortion


def test_graph_probe_protocol_variants_learn_from_training_folds_only():
    """The logistic and label-scarce probes find a planted label direction from 20% of each training fold,
    and stay near chance on features unrelated to the label (a probe that saw the test fold would not)."""
    import numpy as np

    from omnissl_graph.evaluators import svm_cv_accuracy

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 60)
    planted = rng.normal(size=(120, 8))
    planted[:, 0] += 4.0 * y
    unrelated = rng.normal(size=(120, 8))
    for classifier in ("logistic", "svm"):
        cfg = GraphProbeConfig(classifier=classifier, label_fraction=0.3, folds=4, c_grid=[0.1, 1.0])
        assert np.mean(svm_cv_accuracy(planted, y, cfg)) > 0.9
        assert np.mean(svm_cv_accuracy(unrelated, y, cfg)) < 0.7
    assert GraphProbeConfig().result_name == "graph_probe"
    assert GraphProbeConfig(classifier="logistic", label_fraction=0.1).result_name == "graph_probe_logistic_10pct"
