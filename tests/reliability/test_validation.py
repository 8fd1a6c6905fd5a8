"""Issue 11 items 6 and 11 (YAML): what can be known before training is refused by `validate`, the rest before
anything is written; duplicate keys and alias bombs are errors; no message echoes an input without limit."""

import pytest

from tests.reliability.helpers import cli, write_config

# (id, edit of the toy config, text of the one-line problem); each crashed the old code after validate accepted it
ACCEPTED_THEN_CRASHED = [
    ("seed too large for the RNG", lambda c: c.update(seed=2**40), "seed: Input should be less than or equal to 4294967295"),
    ("infinite learning rate", lambda c: c["engine"]["optimizer"].update(lr=float("inf")), "engine.optimizer.lr: must be a finite number (got inf)"),
    ("NaN anywhere", lambda c: c["tasks"][0]["views"].update(sigma=float("nan")), "tasks[0].views.sigma: must be a finite number (got nan)"),
]


@pytest.mark.parametrize("edit,message", [c[1:] for c in ACCEPTED_THEN_CRASHED], ids=[c[0] for c in ACCEPTED_THEN_CRASHED])
def test_validate_refuses_what_would_crash(toy_config, tmp_path, capsys, edit, message):
    edit(toy_config)
    result = cli(capsys, "validate", write_config(tmp_path / "c.yaml", toy_config))
    result.clean_exit_2()
    assert message in result.err


def test_what_needs_the_built_run_fails_before_anything_is_written(quiet_toy, tmp_path, capsys):
    """A batch of one through BatchNorm crashed in the first step, after the run folder was written."""
    quiet_toy["engine"]["batch_size"] = 1
    result = cli(capsys, "pretrain", write_config(tmp_path / "c.yaml", quiet_toy))
    result.clean_exit_2()
    assert "tasks[0] ('toy'): one sample per batch per process" in result.err and "is a BatchNorm layer" in result.err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("engine", [{"steps": 5}, {"steps": None, "epochs": 1, "batch_size": 128}])
def test_warmup_longer_than_the_run_is_named_not_fatal(quiet_toy, tmp_path, capsys, engine):
    """The schedules clamp warm-up to the run, so a smoke test with engine.steps=2 trains; the user is told."""
    quiet_toy["engine"].update(engine, schedule={"name": "cosine", "warmup_steps": 50})
    result = cli(capsys, "pretrain", write_config(tmp_path / "c.yaml", quiet_toy))
    assert result.rc == 0, result.err
    steps = 5 if engine.get("steps") else 2
    assert f"engine.schedule.warmup_steps=50 is not less than the run's {steps} steps" in result.err


def test_duplicate_yaml_keys_are_an_error(tmp_path, capsys):
    text = "seed: 0\nengine: {steps: 5}\ntasks: []\nengine: {steps: 500}\n"
    result = cli(capsys, "validate", _write(tmp_path / "c.yaml", text))
    result.clean_exit_2()
    assert "key 'engine' appears twice in one mapping (first at line 2)" in result.err and "line 4" in result.err


def test_yaml_merge_keys_are_not_duplicates(toy_config, tmp_path, capsys):
    import yaml

    body = yaml.safe_dump({k: v for k, v in toy_config.items() if k != "engine"})
    text = "base: &base {steps: 5, batch_size: 64}\n" + body + "engine:\n  <<: *base\n  steps: 6\n"
    text = text.replace("base: &base", "x-base: &base")
    result = cli(capsys, "validate", _write(tmp_path / "c.yaml", text))
    assert "x-base: unknown key" in result.err and "appears twice" not in result.err


def test_an_alias_bomb_is_refused_with_a_short_message(tmp_path, capsys):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    result = cli(capsys, "validate", _write(tmp_path / "bomb.yaml", "\n".join(lines) + "\nseed: *a8\n"))
    result.clean_exit_2()
    assert "expands to more than 1,000,000 values through YAML aliases" in result.err
    assert len(result.err) < 2000  # the old code printed 72 MB


def test_a_huge_bad_value_is_not_echoed_whole(toy_config, tmp_path, capsys):
    toy_config["engine"]["steps"] = "x" * 1_000_000
    result = cli(capsys, "validate", write_config(tmp_path / "c.yaml", toy_config))
    result.clean_exit_2()
    assert "engine.steps: Input should be a valid integer" in result.err and len(result.err) < 2000


def _write(path, text):
    path.write_text(text)
    return path
