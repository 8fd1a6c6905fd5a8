"""Issue 11 items 2, 4, 7 and 11: checksummed checkpoints, --resume semantics, resume config diff, small defects."""

import json

import pytest
import torch
from safetensors.torch import load_file

from omnissl import checkpoint as ckpt
from omnissl.config import CheckpointConfig

from tests.reliability.helpers import assert_unchanged, cli, snapshot, write_config


def _train(capsys, tmp_path, config, *args):
    result = cli(capsys, "pretrain", write_config(tmp_path / "c.yaml", config), *args)
    assert result.rc == 0, result.err[-3000:]
    return result


def _flip_a_byte_inside(path, tensor):
    """Flip one byte in the middle of ``tensor``'s bytes as stored in ``path`` (a damaged disk block)."""
    raw = bytearray(path.read_bytes())
    needle = tensor.contiguous().numpy().tobytes()
    at = raw.find(needle)
    assert at >= 0 and raw.find(needle, at + 1) < 0
    raw[at + len(needle) // 2] ^= 0x40
    path.write_bytes(bytes(raw))


def test_a_flipped_byte_in_a_tensor_is_refused_everywhere_naming_the_file(quiet_toy, tmp_path, capsys):
    """The old code resumed, evaluated and exported the damaged weights without a word."""
    quiet_toy["engine"]["checkpoint"] = {"every": 2, "keep": 3}
    _train(capsys, tmp_path, quiet_toy)
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    _flip_a_byte_inside(last, ckpt.load(last)["model"]["tasks.toy.encoder.net.0.weight"])
    before = snapshot(tmp_path / "run")
    cfg = tmp_path / "c.yaml"
    quiet_toy["engine"]["steps"] = 8
    write_config(cfg, quiet_toy)
    for argv in (["pretrain", cfg, "--resume"], ["export", last], ["evaluate", last]):
        result = cli(capsys, *argv)
        result.clean_exit_2()
        assert f"checkpoint {last} is corrupt: model.tasks.toy.encoder.net.0.weight differs" in result.err
    assert_unchanged(before, tmp_path / "run")
    # only when asked: the newest numbered checkpoint that verifies
    fallback = _train(capsys, tmp_path, quiet_toy, "--resume", "--fallback-to-previous")
    assert "skipped" in fallback.err and "step_00000006.pt" in fallback.err
    assert ckpt.load(last)["step"] == 8


def test_a_changed_step_or_config_value_is_caught_too(quiet_toy, tmp_path, capsys):
    _train(capsys, tmp_path, quiet_toy)
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    raw = last.read_bytes()
    state = ckpt.load(last)
    assert raw.count(state["config"].encode()) == 1
    last.write_bytes(raw.replace(b'"lr":0.003', b'"lr":0.004'))  # same length: the pickle still reads
    result = cli(capsys, "export", last)
    result.clean_exit_2()
    assert "(step, config or positions) differs" in result.err


def test_periodic_checkpoints_are_on_by_default():
    """A SIGKILL with the default config loses at most 10 minutes or 5000 steps (the old default: everything)."""
    default = CheckpointConfig()
    assert default.every_minutes == 10 and default.every == 5000


def test_checkpoint_by_wall_time(quiet_toy, tmp_path, capsys):
    quiet_toy["engine"].update(steps=40, checkpoint={"every": None, "every_minutes": 1e-6, "keep": 100})
    _train(capsys, tmp_path, quiet_toy)
    steps = sorted(int(p.stem.split("_")[1]) for p in (tmp_path / "run" / "checkpoints").glob("step_*.pt"))
    assert len(steps) > 20 and steps[-1] == 40  # one per step boundary once the (tiny) interval has passed


def test_resume_with_nothing_to_resume_is_an_error_unless_auto(quiet_toy, tmp_path, capsys):
    """The old code started from step 0 and told the user to pass --resume."""
    cfg = write_config(tmp_path / "c.yaml", quiet_toy)
    result = cli(capsys, "pretrain", cfg, "--resume")
    result.clean_exit_2()
    assert "nothing to resume" in result.err and "--resume auto" in result.err
    assert not (tmp_path / "run" / "checkpoints").exists()
    auto = cli(capsys, "pretrain", cfg, "--resume", "auto")
    assert auto.rc == 0 and "starting a fresh run" in auto.err
    assert ckpt.load(tmp_path / "run" / "checkpoints" / "last.pt")["step"] == 6


@pytest.mark.parametrize("override,key", [
    ("tasks[0].encoder.hidden_dim=48", "tasks[0].encoder.hidden_dim: 32 -> 48"),  # old: size-mismatch traceback
    ("engine.optimizer.name=sgd", "engine.optimizer.name: 'adamw' -> 'sgd'"),  # old: KeyError after writing logs
    ("seed=3", "seed: 0 -> 3"),
])
def test_resume_refuses_a_changed_run_listing_the_keys(quiet_toy, tmp_path, capsys, override, key):
    cfg = write_config(tmp_path / "c.yaml", quiet_toy)
    _train(capsys, tmp_path, quiet_toy)
    before = snapshot(tmp_path / "run")
    result = cli(capsys, "pretrain", cfg, override, "--resume")
    result.clean_exit_2()
    assert key in result.err and "that change what is trained" in result.err
    assert_unchanged(before, tmp_path / "run")


def test_resume_allows_length_logging_and_eval_changes_naming_each(quiet_toy, tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", quiet_toy)
    _train(capsys, tmp_path, quiet_toy)
    longer = cli(capsys, "pretrain", cfg, "engine.steps=10", "logging.log_every=1", "--resume")
    assert longer.rc == 0, longer.err
    assert "resume: engine.steps: 6 -> 10" in longer.err and "resume: logging.log_every: 2 -> 1" in longer.err
    shorter = cli(capsys, "pretrain", cfg, "engine.steps=4", "logging.log_every=1", "--resume")  # old: ended with no note
    assert shorter.rc == 0, shorter.err
    assert "engine.steps: 10 -> 4" in shorter.err and "the checkpoint is at step 10" in shorter.err and "no step is trained" in shorter.err


def test_resume_moves_log_lines_past_the_checkpoint_aside(quiet_toy, tmp_path, capsys):
    """A kill after step 8's log but before a checkpoint after step 4: the old log repeated steps 5-8."""
    quiet_toy["engine"].update(steps=8, checkpoint={"every": 4, "keep": 2})
    quiet_toy["logging"]["log_every"] = 1
    _train(capsys, tmp_path, quiet_toy)
    run = tmp_path / "run"
    (run / "checkpoints" / "step_00000004.pt").replace(run / "checkpoints" / "last.pt")  # as if killed at step 6
    result = _train(capsys, tmp_path, quiet_toy, "--resume")
    assert "moved 4 lines of metrics.jsonl logged after step 4" in result.err
    steps = [json.loads(line)["step"] for line in open(run / "metrics.jsonl")]
    assert steps == sorted(set(steps)) == list(range(1, 9))
    assert [json.loads(line)["step"] for line in open(run / "metrics.rolled-back.jsonl")] == [5, 6, 7, 8]


def test_resume_removes_a_partial_checkpoint_left_by_a_kill(quiet_toy, tmp_path, capsys):
    _train(capsys, tmp_path, quiet_toy)
    partial = tmp_path / "run" / "checkpoints" / ".step_00000004.pt.tmp-4242"
    partial.write_bytes(b"half a checkpoint")
    result = _train(capsys, tmp_path, quiet_toy, "engine.steps=8", "--resume")
    assert not partial.exists() and "removed .step_00000004.pt.tmp-4242" in result.err


def test_export_onto_an_existing_path(quiet_toy, tmp_path, capsys):
    _train(capsys, tmp_path, quiet_toy)
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    (tmp_path / "a_file").write_text("x")
    onto_file = cli(capsys, "export", last, "-o", tmp_path / "a_file")  # old: FileExistsError traceback
    onto_file.clean_exit_2()
    assert "is a file" in onto_file.err
    assert cli(capsys, "export", last, "-o", tmp_path / "exp").rc == 0
    first = snapshot(tmp_path / "exp")
    again = cli(capsys, "export", last, "-o", tmp_path / "exp")
    again.clean_exit_2()
    assert "already holds encoder_toy.safetensors, config.yaml; pass --force" in again.err
    assert_unchanged(first, tmp_path / "exp")
    assert cli(capsys, "export", last, "-o", tmp_path / "exp", "--force").rc == 0
    assert load_file(str(tmp_path / "exp" / "encoder_toy.safetensors")).keys() == {"net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias"}


def test_task_names_from_a_checkpoint_never_become_paths(quiet_toy, tmp_path, capsys):
    _train(capsys, tmp_path, quiet_toy)
    state = ckpt.load(tmp_path / "run" / "checkpoints" / "last.pt")
    config = json.loads(state["config"])
    config["tasks"][0]["name"] = "../../escaped"
    state["config"] = json.dumps(config)
    state["model"] = {k.replace("tasks.toy.", "tasks.../../escaped."): v for k, v in state["model"].items()}
    crafted = ckpt.save_atomic(state, tmp_path / "crafted.pt")  # valid checksums: only the name is hostile
    result = cli(capsys, "export", crafted, "-o", tmp_path / "exp" / "a" / "b")
    result.clean_exit_2()
    assert "not valid task names" in result.err
    assert not list(tmp_path.rglob("*escaped*"))


def test_evaluate_writes_beside_the_checkpoint_not_into_the_stored_out_dir(quiet_toy, tmp_path, capsys):
    quiet_toy["tasks"][0]["eval"] = [{"name": "core.knn_probe"}]
    _train(capsys, tmp_path, quiet_toy)
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    state = ckpt.load(last)
    config = json.loads(state["config"])
    config["logging"]["out_dir"] = str(tmp_path / "somewhere_else")
    state["config"] = json.dumps(config)
    moved = ckpt.save_atomic(state, tmp_path / "copy" / "checkpoints" / "last.pt")
    result = cli(capsys, "evaluate", moved)
    assert result.rc == 0, result.err
    assert not (tmp_path / "somewhere_else").exists()  # the old code wrote evals.jsonl there
    (line,) = (tmp_path / "copy" / "evaluate-step6" / "evals.jsonl").read_text().splitlines()
    assert json.loads(line)["name"] and json.loads(line)["step"] == 6


def test_checkpoint_load_never_runs_code(tmp_path):
    import os
    import pickle

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'ran'}",))

    path = tmp_path / "evil.pt"
    torch.save({"step": 1, "model": {}, "config": "{}", "x": Payload()}, path)
    with pytest.raises(Exception, match="cannot read checkpoint"):
        ckpt.load(path)
    assert not (tmp_path / "ran").exists()
    del pickle
