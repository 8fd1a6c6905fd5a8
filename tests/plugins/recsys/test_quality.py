"""MovieLens latest-small reproductions (slow; run by the benchmark harness, not CI)."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _runner():
    spec = importlib.util.spec_from_file_location("recsys_quality", ROOT / "benchmarks" / "recsys_quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.quality
@pytest.mark.parametrize("ssl_model", ["sgl", "simgcl", "xsimgcl"])
def test_graph_ssl_beats_lightgcn_on_movielens(ssl_model):
    runner = _runner()
    if not (runner.data_dir() / "ratings.csv").is_file():
        pytest.skip("MovieLens latest-small not available (set OMNISSL_DATA)")
    base = runner.run_model("lightgcn", 0, [])
    ssl = runner.run_model(ssl_model, 0, [])
    # docs/results.md: LightGCN 0.2248, SGL 0.2395, SimGCL 0.2484, XSimGCL 0.2619 test Recall@20
    assert ssl["metrics"]["test/recall@20"] > base["metrics"]["test/recall@20"]
    assert base["metrics"]["test/recall@20"] > 0.20


@pytest.mark.quality
def test_popularity_and_mf_baselines_on_movielens():
    runner = _runner()
    if not (runner.data_dir() / "ratings.csv").is_file():
        pytest.skip("MovieLens latest-small not available (set OMNISSL_DATA)")
    mf = runner.run_model("mf", 0, [])["metrics"]
    assert mf["test/recall@20"] > mf["popularity/test/recall@20"] > 0.1
