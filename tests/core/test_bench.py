"""``omnissl bench`` on one shipped config of every plugin, a few steps each: the harness runs the real trainer
and reports samples/s, step time, data-wait share, TFLOP/s and peak memory, and writes them as JSON."""

import json
from pathlib import Path

import pytest

from omnissl.bench import run_bench, summarize
from omnissl.cli import main
from omnissl.testing.data import shared_data_dir

ROOT = Path(__file__).parents[2]
PLUGIN_CONFIGS = {  # one per plugin; the smallest that reads real data where the plugin ships one
    "graph": ROOT / "plugins/graph/src/omnissl_graph/configs/cora_graphmae.yaml",
    "speech": ROOT / "plugins/speech/src/omnissl_speech/configs/synthetic_tera.yaml",
    "tabular": ROOT / "plugins/tabular/src/omnissl_tabular/configs/adult_scarf.yaml",
    "recsys": ROOT / "plugins/recsys/src/omnissl_recsys/configs/generated_lightgcn.yaml",
    "video": ROOT / "plugins/video/src/omnissl_video/configs/moving_digits_videomae.yaml",
    "medical": ROOT / "plugins/medical/src/omnissl_medical/configs/vesselmnist3d_mae3d.yaml",
}
# LightGCN keeps its normalised adjacency as a sparse CSR buffer, which deepcopy (and so the FLOP count on a
# copy) cannot take: the run logs why and leaves tflops/mfu out rather than reporting a wrong number.
NO_FLOP_COUNT = {"recsys"}


@pytest.mark.parametrize("plugin", sorted(PLUGIN_CONFIGS))
def test_bench_runs_one_config_of_each_plugin(plugin, tmp_path, monkeypatch):
    pytest.importorskip(f"omnissl_{plugin}")
    path = PLUGIN_CONFIGS[plugin]
    text = path.read_text()
    if ("OMNISSL_DATA" in text or "shared/data" in text) and shared_data_dir() is None:
        pytest.skip("config reads ../shared/data, which this machine lacks")
    monkeypatch.chdir(ROOT)  # shipped configs name data relative to the repository root
    result = run_bench(path, ["engine.peak_tflops=1.0"], steps=2, warmup=1, device="cpu", json_path=tmp_path / "b.json")
    written = json.loads((tmp_path / "b.json").read_text())
    assert written == json.loads(json.dumps(result))
    assert written["measured_steps"] == 2 and written["device"].startswith("CPU")
    assert written["samples_per_s"] > 0 and written["step_time_s"] > 0
    assert 0 <= written["data_wait_fraction"] < 1 and written["peak_memory_gb"] > 0
    if plugin in NO_FLOP_COUNT:
        assert "tflops" not in written and "mfu" not in written and written["flops_per_batch"] == {}
        return
    assert written["tflops"] > 0 and written["mfu"] == pytest.approx(written["tflops"] / 1.0)
    assert all(flops > 0 for flops in written["flops_per_batch"].values())


def test_summary_weights_each_window_by_its_time():
    windows = [
        {"step_time_s": 1.0, "samples_per_s": 10.0, "data_wait_fraction": 0.5, "peak_memory_gb": 1.0, "tflops": 1.0},
        {"step_time_s": 3.0, "samples_per_s": 2.0, "data_wait_fraction": 0.0, "peak_memory_gb": 2.0, "tflops": 3.0},
    ]
    out = summarize(windows, [2, 2])  # 2 s and 6 s of wall time
    assert out["step_time_s"] == pytest.approx(2.0) and out["steps_per_s"] == pytest.approx(0.5)
    assert out["samples_per_s"] == pytest.approx((10 * 2 + 2 * 6) / 8)  # 32 samples in 8 s
    assert out["data_wait_fraction"] == pytest.approx(1 / 8) and out["peak_memory_gb"] == 2.0
    assert out["tflops"] == pytest.approx((2 + 18) / 8) and "mfu" not in out


def test_cli_bench_prints_and_writes_json(toy_config, tmp_path, capsys):
    path = tmp_path / "toy.json"
    path.write_text(json.dumps(toy_config))
    assert main(["bench", str(path), "--steps", "2", "--warmup", "1", "--device", "cpu", "--json", str(tmp_path / "t.json")]) == 0
    printed = capsys.readouterr().out
    assert "samples/s" in printed and "MFU" in printed and "n/a" in printed  # no known peak for a CPU
    assert json.loads((tmp_path / "t.json").read_text())["samples_per_s"] > 0


def test_cli_bench_missing_config_exits_2(tmp_path, capsys):
    assert main(["bench", str(tmp_path / "nope.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err
