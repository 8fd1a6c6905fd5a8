"""`omnissl plot` draws a finished run: losses, collapse signals, probes against baselines, t-SNE maps."""

import json

import pytest

from omnissl.cli import main
from omnissl.plots import read_metrics
from omnissl.testing.toy import toy_run_config

pytest.importorskip("matplotlib", reason="omnissl[plot] extra not installed")
pytest.importorskip("sklearn", reason="omnissl[plot] extra not installed")

PNG = b"\x89PNG\r\n\x1a\n"


def test_plot_command_writes_every_figure_of_a_finished_run(tmp_path, capsys):
    from omnissl.config import load_config
    from omnissl.engine import run_config

    cfg = toy_run_config(str(tmp_path / "run"), steps=40)
    cfg["tasks"][0]["eval"] = [{"name": "core.knn_probe", "seeds": 2}]
    cfg["eval"] = {"every": 20, "at_end": True}
    cfg["logging"].update(log_every=10, progress=False)
    run_config(load_config(cfg))
    assert main(["plot", str(tmp_path / "run")]) == 0
    names = {p.name for p in (tmp_path / "run" / "plots").iterdir()}
    assert names == {"training.png", "collapse.png", "probes.png", "embedding_toy.png"}
    for path in (tmp_path / "run" / "plots").iterdir():
        assert path.read_bytes()[:8] == PNG and path.stat().st_size > 5_000
    assert "wrote" in capsys.readouterr().out


def test_read_metrics_keeps_the_last_record_of_a_step_logged_twice(tmp_path):
    lines = [{"step": 10, "loss": 3.0}, {"step": 20, "loss": 2.0}, {"step": 20, "loss": 1.5}, {"step": 20, "eval/t/p/encoder/test_acc": 0.9}]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n{\"step\": 30, \"lo")
    records = read_metrics(tmp_path)
    assert [(r["step"], r.get("loss")) for r in records] == [(10, 3.0), (20, 1.5), (20, None)]


def test_plot_of_a_folder_without_a_run_is_a_clear_error(tmp_path, capsys):
    assert main(["plot", str(tmp_path)]) == 2
    assert "no metrics.jsonl" in capsys.readouterr().err
