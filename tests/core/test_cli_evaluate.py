"""``omnissl evaluate CHECKPOINT --out DIR`` writes its evaluations to DIR and leaves the run's own evals.jsonl alone."""

import json

from omnissl.cli import main
from omnissl.engine import run_config


def test_evaluate_out_writes_elsewhere_and_leaves_the_run_untouched(toy_config, tmp_path, capsys):
    toy_config["engine"]["steps"] = 4
    toy_config["tasks"][0]["eval"] = [{"name": "core.knn_probe", "seeds": 1}]
    result = run_config(toy_config)
    run_evals = (result.out_dir / "evals.jsonl").read_text()
    assert main(["evaluate", str(result.checkpoint), "--out", str(tmp_path / "elsewhere")]) == 0
    (line,) = (tmp_path / "elsewhere" / "evals.jsonl").read_text().splitlines()
    assert json.loads(line)["step"] == 4 and json.loads(line)["name"] == "knn_probe"
    assert (result.out_dir / "evals.jsonl").read_text() == run_evals  # nothing appended to the original run
    assert not (result.out_dir / "evaluate-step4").exists()
    assert f"evaluations written to {tmp_path / 'elsewhere' / 'evals.jsonl'}" in capsys.readouterr().out


def test_overrides_after_options_reach_the_config(toy_config, tmp_path):
    """``evaluate CKPT -o DIR key=value`` and ``pretrain CONFIG --option key=value``: argparse took the
    overrides only before the first option and refused them after it ("unrecognized arguments")."""
    import yaml

    toy_config["engine"]["steps"] = 2
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(toy_config))
    assert main(["pretrain", str(config), "--force-out-dir", "engine.steps=3", f"logging.out_dir={tmp_path / 'run3'}"]) == 0
    assert (tmp_path / "run3" / "checkpoints" / "last.pt").is_file()
    assert [json.loads(line)["step"] for line in (tmp_path / "run3" / "metrics.jsonl").read_text().splitlines()][-1] == 3

    checkpoint = tmp_path / "run3" / "checkpoints" / "last.pt"
    out = tmp_path / "evaluated"
    assert main(["evaluate", str(checkpoint), "-o", str(out), "tasks[0].eval=[{name: core.knn_probe, seeds: 1}]"]) == 0
    (line,) = (out / "evals.jsonl").read_text().splitlines()
    assert json.loads(line)["name"] == "knn_probe" and json.loads(line)["step"] == 3
