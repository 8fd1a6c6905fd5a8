"""Issue 11 items 8 and 9: a full or read-only disk is a named cause with exit 2 and the previous checkpoint
intact; Ctrl-C during an evaluation stops the run (the old code ignored it and exited 0)."""

import errno
import os
import pathlib
import signal

import pytest
import torch

import omnissl.plugins
from omnissl import EvaluatorSpec, hookimpl
from omnissl import checkpoint as ckpt
from omnissl.evaluation.api import EvalResult

from tests.reliability.helpers import cli, snapshot, write_config, assert_nothing_lost


def _fail_after(monkeypatch, target, name, calls_ok: int, err: int):
    real = getattr(target, name)
    count = {"n": 0}

    def flaky(*args, **kwargs):
        count["n"] += 1
        if count["n"] > calls_ok:
            raise OSError(err, os.strerror(err))
        return real(*args, **kwargs)

    monkeypatch.setattr(target, name, flaky)


def test_disk_full_while_checkpointing(quiet_toy, tmp_path, capsys, monkeypatch):
    quiet_toy["engine"].update(steps=8, checkpoint={"every": 2})
    _fail_after(monkeypatch, torch, "save", calls_ok=2, err=errno.ENOSPC)
    result = cli(capsys, "pretrain", write_config(tmp_path / "c.yaml", quiet_toy))
    result.clean_exit_2()
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    assert f"no space left on device while writing {last}" in result.err
    assert ckpt.load(last)["step"] == 4  # the previous checkpoint, intact
    assert not list(last.parent.glob(".*tmp*"))


def test_read_only_disk_at_start(quiet_toy, tmp_path, capsys, monkeypatch):
    cfg = write_config(tmp_path / "c.yaml", quiet_toy)
    assert cli(capsys, "pretrain", cfg).rc == 0
    before = snapshot(tmp_path / "run")
    _fail_after(monkeypatch, pathlib.Path, "write_text", calls_ok=0, err=errno.EROFS)
    _fail_after(monkeypatch, pathlib.Path, "rename", calls_ok=0, err=errno.EROFS)
    result = cli(capsys, "pretrain", cfg)
    result.clean_exit_2()
    assert "read-only file system while writing" in result.err
    assert_nothing_lost(before, tmp_path / "run")


class _SignalDuringEval:
    def __call__(self, run):
        os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, delivered while the evaluator works
        for _ in range(100):
            torch.ones(1000).sum()
        return EvalResult(name="late", metrics={"never": 1.0}, rows=[])


class _Plugin:
    @hookimpl
    def omnissl_evaluators(self):
        yield EvaluatorSpec(name="test.ctrl_c", factory=lambda cfg, ctx: _SignalDuringEval(), summary="sends SIGINT to itself")


@pytest.fixture
def ctrl_c_plugin():
    omnissl.plugins._default = None
    pm = omnissl.plugins.get_plugin_manager()
    pm.register(_Plugin(), name="ctrl_c")
    yield
    omnissl.plugins._default = None


@pytest.mark.parametrize("when", ["end", "during"])
def test_ctrl_c_during_evaluation_stops_the_run(quiet_toy, tmp_path, capsys, ctrl_c_plugin, when):
    quiet_toy["tasks"][0]["eval"] = [{"name": "test.ctrl_c"}]
    quiet_toy["eval"] = {"at_end": True, "every": 4 if when == "during" else None}
    result = cli(capsys, "pretrain", write_config(tmp_path / "c.yaml", quiet_toy))
    assert result.rc == 128 + signal.SIGINT, result.err
    step = 4 if when == "during" else 6
    assert f"interrupted by SIGINT during the evaluation at step {step}" in result.err and "Traceback" not in result.err
    assert ckpt.load(tmp_path / "run" / "checkpoints" / "last.pt")["step"] == step
    assert not (tmp_path / "run" / "evals.jsonl").exists()
