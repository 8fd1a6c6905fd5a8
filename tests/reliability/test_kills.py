"""Fault injection: SIGKILL at random steps (through a real process) and a disk that fills up at a random save.

After each fault: ``--resume`` finishes the run, the result equals a run that was never interrupted
(bitwise, on CPU), the metrics log has every step once, and no partial checkpoint is left behind. The
concurrent-run case is ``test_out_dir.py::test_second_run_in_a_busy_out_dir_exits_2_naming_the_first``.
"""

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from omnissl import checkpoint as ckpt

from tests.reliability.helpers import ROOT, cli, process_env, write_config

TOTAL = 30
SLOW_CLI = Path(__file__).with_name("slow_cli.py")


def _straight(quiet_toy, tmp_path, capsys):
    straight = dict(quiet_toy, logging={**quiet_toy["logging"], "out_dir": str(tmp_path / "straight")})
    assert cli(capsys, "pretrain", write_config(tmp_path / "straight.yaml", straight)).rc == 0
    return ckpt.load(tmp_path / "straight" / "checkpoints" / "last.pt")


def _same_run(a, b):
    assert a["step"] == b["step"] == TOTAL
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key


def _logged_steps(path):
    return [json.loads(line)["step"] for line in open(path)]


@pytest.fixture
def killable(quiet_toy):
    quiet_toy["engine"].update(steps=TOTAL, checkpoint={"every": 3, "keep": 2}, optimizer={"name": "adamw", "lr": 0.003})
    quiet_toy["logging"]["log_every"] = 1
    return quiet_toy


@pytest.mark.parametrize("seed", [11])  # one kill keeps the suite inside its CI budget; add seeds to widen it
def test_sigkill_at_a_random_step_then_resume(killable, tmp_path, capsys, seed):
    kill_at = random.Random(seed).randint(4, TOTAL - 4)
    cfg = write_config(tmp_path / "c.yaml", killable)
    metrics = tmp_path / "run" / "metrics.jsonl"
    # slow_cli.py sleeps at every log, so the kill lands mid-training however fast the machine is
    proc = subprocess.Popen([sys.executable, str(SLOW_CLI), "pretrain", cfg, "logging.callbacks=[{name: test.slow}]"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=process_env(), cwd=ROOT)
    deadline = time.monotonic() + 180
    while not (metrics.is_file() and len(metrics.read_text().splitlines()) >= kill_at):
        if proc.poll() is not None:
            break  # finished before the kill: the machine was faster than the poll
        assert time.monotonic() < deadline, "no progress in 180 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    killed_at = ckpt.load(tmp_path / "run" / "checkpoints" / "last.pt")["step"]
    assert 0 < killed_at < TOTAL
    resumed = cli(capsys, "pretrain", cfg, "--resume")
    assert resumed.rc == 0, resumed.err
    assert "Traceback" not in resumed.err
    _same_run(_straight(killable, tmp_path, capsys), ckpt.load(tmp_path / "run" / "checkpoints" / "last.pt"))
    assert _logged_steps(metrics) == list(range(1, TOTAL + 1)), f"killed after checkpoint {killed_at}"
    assert not list((tmp_path / "run" / "checkpoints").glob(".*tmp*"))


def test_disk_full_at_a_random_save_then_resume(killable, tmp_path, capsys, monkeypatch):
    fail_at = random.Random(5).randint(2, 8)  # torch.save calls: two per checkpoint (last.pt and step_N.pt)
    real, calls = torch.save, {"n": 0}

    def filling_disk(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] >= fail_at:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*args, **kwargs)

    cfg = write_config(tmp_path / "c.yaml", killable)
    monkeypatch.setattr(torch, "save", filling_disk)
    full = cli(capsys, "pretrain", cfg)
    full.clean_exit_2()
    assert "no space left on device while writing" in full.err
    before = ckpt.load(tmp_path / "run" / "checkpoints" / "last.pt")["step"] if fail_at > 1 else 0
    monkeypatch.setattr(torch, "save", real)  # space freed
    resumed = cli(capsys, "pretrain", cfg, "--resume")
    assert resumed.rc == 0, resumed.err
    assert before > 0
    _same_run(_straight(killable, tmp_path, capsys), ckpt.load(tmp_path / "run" / "checkpoints" / "last.pt"))
    assert _logged_steps(tmp_path / "run" / "metrics.jsonl") == list(range(1, TOTAL + 1))
