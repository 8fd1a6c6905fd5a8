"""Two processes under torchrun (gloo, CPU): they match one process with the same global batch (NT-Xent), and
a signal to one rank stops every rank at the same step."""

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from omnissl import checkpoint as ckpt


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_run_matches_one_process(tmp_path, toy_config):
    # deterministic views and no BatchNorm, so the only difference is where the math runs
    toy_config["tasks"][0]["views"].update(sigma=0.0, drop=0.0)
    toy_config["tasks"][0]["objective"]["proj_layers"] = 1
    toy_config["engine"].update(steps=8, batch_size=64, optimizer={"name": "adamw", "lr": 0.01})
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    runs = {}
    for procs in (1, 2):
        cfg = dict(toy_config, logging={**toy_config["logging"], "out_dir": str(tmp_path / f"p{procs}")})
        path = tmp_path / f"p{procs}.json"
        path.write_text(json.dumps(cfg))
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={procs}", f"--master_port={_free_port()}",
               "-m", "omnissl.cli", "pretrain", str(path)]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        runs[procs] = ckpt.load(tmp_path / f"p{procs}" / "checkpoints" / "last.pt")
    one, two = runs[1]["model"], runs[2]["model"]
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=1e-4, atol=1e-5, msg=key)
    losses = {p: [json.loads(l)["loss"] for l in open(tmp_path / f"p{p}" / "metrics.jsonl") if '"loss"' in l] for p in (1, 2)}
    assert losses[1][0] != losses[1][-1]
    assert losses[1] == pytest.approx(losses[2], rel=1e-4)


def test_sigterm_to_one_rank_stops_every_rank_at_the_same_step(tmp_path, toy_config):
    """torchrun, 2 processes; only rank 1 gets SIGTERM (after step 10's log): both ranks stop at one step,
    one checkpoint is written, and --resume under torchrun finishes the run."""
    toy_config["tasks"][0]["encoder"]["name"] = "toy.mlp"
    toy_config["engine"].update(steps=30, batch_size=32)
    toy_config["logging"].update(log_every=1, callbacks=[{"name": "test.kill_at"}], out_dir=str(tmp_path / "run"))
    path = tmp_path / "run.json"
    path.write_text(json.dumps(toy_config))
    script = Path(__file__).with_name("sigterm_cli.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1", "STOP_AT": "10", "STOP_RANK": "1"}

    def torchrun(*args):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}", str(script), "pretrain", str(path), *args]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)  # uncoordinated ranks deadlock

    first = torchrun()
    assert first.returncode != 0
    messages = re.findall(r"interrupted by SIGTERM at step (\d+)", first.stderr)
    assert len(messages) == 2 and len(set(messages)) == 1, first.stderr[-3000:]  # both ranks, the same step
    stopped = int(messages[0])
    # every rank torchrun reports exited 128 + SIGTERM; once the first rank exits, torchrun may stop the other
    # itself and report only the first, so the listing is not asserted to name both (both messages above are)
    reported = set(re.findall(r"rank\s*: (\d) .*\n\s*exitcode\s*: (\d+)", first.stderr))
    assert stopped in (10, 11) and reported and all(code == "143" for _, code in reported), first.stderr[-3000:]
    assert not re.search(r'File ".*/omnissl/', first.stderr)  # torchrun reports the exit codes; no traceback of ours
    assert ckpt.load(tmp_path / "run" / "checkpoints" / "last.pt")["step"] == stopped

    env["STOP_AT"] = "0"
    second = torchrun("--resume")
    assert second.returncode == 0, second.stderr[-3000:]
    assert ckpt.load(tmp_path / "run" / "checkpoints" / "last.pt")["step"] == 30
