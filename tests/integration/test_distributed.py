"""Two processes under torchrun (gloo, CPU) match one process with the same global batch (NT-Xent)."""

import json
import os
import socket
import subprocess
import sys

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
