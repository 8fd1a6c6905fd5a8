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
