"""Linear and kNN probes and the probe runner with its two baselines."""

import pytest
import torch

from omnissl.data import TensorSource
from omnissl.evaluation.api import EvalRun
from omnissl.evaluation.probes import (
    KNNProbeConfig,
    LinearProbeConfig,
    default_splits,
    knn_probe,
    knn_probe_evaluator,
    linear_probe,
    linear_probe_evaluator,
    run_probes,
)
from omnissl.specs import BuildContext
from omnissl.testing import toy


def _separable(n=300, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(3, (n,), generator=g)
    centres = torch.eye(d)[:3] * 10
    return centres[y] + torch.randn(n, d, generator=g), y


def test_default_splits_are_a_seeded_disjoint_60_20_20_partition():
    s = default_splits(100, seed=3)
    assert [len(s[k]) for k in ("train", "val", "test")] == [60, 20, 20]
    assert torch.equal(torch.cat(list(s.values())).sort().values, torch.arange(100))
    assert torch.equal(default_splits(100, seed=3)["test"], s["test"])
    assert not torch.equal(default_splits(100, seed=4)["test"], s["test"])


def test_probes_separate_a_linearly_separable_set():
    x, y = _separable()
    splits = default_splits(len(y), 0)
    assert linear_probe(x, y, splits)["test_acc"] == 1.0
    assert linear_probe(x, y, splits, optimizer="adam", epochs=30, batch_size=64, lr=0.05)["test_acc"] == 1.0
    assert knn_probe(x, y, splits)["test_acc"] == 1.0


def test_linear_probe_on_sklearn_digits_raw_pixels():
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    x, y = torch.tensor(digits.data, dtype=torch.float32), torch.tensor(digits.target)
    result = linear_probe(x, y, default_splits(len(y), 0), epochs=30)
    assert result["test_acc"] >= 0.93, result
    assert knn_probe(x, y, default_splits(len(y), 0))["test_acc"] >= 0.93


def test_probe_bad_inputs():
    x, y = _separable()
    splits = default_splits(len(y), 0)
    with pytest.raises(ValueError, match="one integer class label"):
        linear_probe(x, y[:10], splits)
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        knn_probe(x.unsqueeze(0), y, splits)
    with pytest.raises(ValueError, match="valid choices"):
        linear_probe(x, y, splits, optimizer="sgd")


def _toy_run():
    source = toy.toy_source(toy.ToyDataConfig(num_samples=200, noise=0.5))
    torch.manual_seed(0)
    encoder = toy.ToyMLPEncoder(16, toy.ToyMLPConfig(hidden_dim=32, output_dim=8))

    def random_encoder():
        torch.manual_seed(99)
        return toy.ToyMLPEncoder(16, toy.ToyMLPConfig(hidden_dim=32, output_dim=8))

    return EvalRun(encoder=encoder, data=source, device=torch.device("cpu"), random_encoder=random_encoder, seed=0)


def test_run_probes_always_reports_encoder_surface_and_random_rows():
    run = _toy_run()
    result = run_probes(run, "class", "linear", seeds=2, epochs=10)
    assert [r["representation"] for r in result.rows] == ["encoder", "surface features", "random encoder"]
    assert all("±" in r["test_acc"] for r in result.rows)
    for rep in ("encoder", "surface", "random"):
        assert 0 <= result.metrics[f"{rep}/test_acc"] <= 1
        assert result.metrics[f"{rep}/test_acc_std"] == 0.0  # fixed data splits and a convex full-batch probe
    # the clusters are well separated in the raw features
    assert result.metrics["surface/test_acc"] > 0.9
    assert result.rows[1]["dim"] == 16 and result.rows[0]["dim"] == 8


def test_registered_evaluators_build_and_run():
    run = _toy_run()
    linear = linear_probe_evaluator(LinearProbeConfig(seeds=1, epochs=5), BuildContext())(run)
    knn = knn_probe_evaluator(KNNProbeConfig(seeds=1, k=5), BuildContext())(run)
    assert linear.name == "linear_probe" and knn.name == "knn_probe"
    assert len(linear.rows) == len(knn.rows) == 3
    with pytest.raises(ValueError, match="label"):
        run_probes(run, "colour")
    unlabeled = EvalRun(encoder=run.encoder, data=TensorSource(torch.randn(10, 16)), device=run.device, random_encoder=run.random_encoder)
    with pytest.raises(ValueError, match="label"):
        run_probes(unlabeled)


@pytest.mark.parametrize(("optimizer", "weight_decay", "enough"), [("lbfgs", 1e-4, 30), ("adam", 1e-2, 200)])
def test_linear_probe_says_whether_its_head_converged(optimizer, weight_decay, enough):
    # overlapping classes in 64 dimensions and a small L2 penalty: a finite minimum, some iterations away
    g = torch.Generator().manual_seed(0)
    y = torch.randint(3, (300,), generator=g)
    x = torch.eye(64)[:3][y] + torch.randn(300, 64, generator=g)
    splits = default_splits(300, seed=0)
    kwargs = dict(weight_decays=(weight_decay,), optimizer=optimizer, lr=0.05)
    assert linear_probe(x, y, splits, epochs=enough, **kwargs)["converged"] == 1.0
    assert linear_probe(x, y, splits, epochs=2, **kwargs)["converged"] == 0.0  # cut off while the loss still falls
    assert linear_probe(x, y, splits, epochs=1, **kwargs)["converged"] == 0.0  # one epoch: nothing to compare


def test_run_probes_reports_an_unconverged_head_in_metrics_and_rows():
    run = _toy_run()
    cut = run_probes(run, "class", "linear", seeds=2, epochs=1)
    assert all(cut.metrics[f"{rep}/converged"] == 0.0 for rep in ("encoder", "surface", "random"))
    assert all(r["converged"] == "0/2 (2 stopped at the limit)" for r in cut.rows)
    done = run_probes(run, "class", "linear", seeds=1, epochs=50, weight_decays=(1e-2,))
    assert done.metrics["surface/converged"] == 1.0 and done.rows[1]["converged"] == "1/1"
    assert "±" not in done.rows[1]["test_acc"]  # one seed: no spread to print
