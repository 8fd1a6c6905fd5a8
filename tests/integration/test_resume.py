"""Resume is exact: N steps straight equal N/2 steps, SIGTERM, resume to N — bitwise, on CPU."""

import json
import subprocess
import sys
from pathlib import Path

import torch

from omnissl import checkpoint as ckpt

SCRIPT = Path(__file__).with_name("sigterm_cli.py")


def _run(tmp_path, config, args, stop_at=0):
    cfg_path = tmp_path / "run.json"
    cfg_path.write_text(json.dumps(config))
    env = {"STOP_AT": str(stop_at), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(SCRIPT), "pretrain", str(cfg_path), *args], capture_output=True, text=True, env=env, timeout=300)


def test_sigterm_then_resume_is_bitwise_equal(tmp_path, toy_config):
    toy_config["engine"].update(steps=40, schedule={"name": "cosine", "warmup_steps": 5})
    toy_config["logging"].update(log_every=1, callbacks=[{"name": "test.kill_at"}])
    toy_config["tasks"][0]["encoder"]["name"] = "toy.mlp"

    straight = dict(toy_config, logging={**toy_config["logging"], "out_dir": str(tmp_path / "straight")})
    done = _run(tmp_path, straight, [])
    assert done.returncode == 0, done.stderr

    interrupted = dict(toy_config, logging={**toy_config["logging"], "out_dir": str(tmp_path / "resumed")})
    first = _run(tmp_path, interrupted, [], stop_at=20)
    assert first.returncode == 128 + 15, first.stderr
    assert "interrupted by SIGTERM at step 20" in first.stderr and "Traceback" not in first.stderr
    assert ckpt.load(tmp_path / "resumed" / "checkpoints" / "last.pt")["step"] == 20

    second = _run(tmp_path, interrupted, ["--resume"])
    assert second.returncode == 0, second.stderr

    a = ckpt.load(tmp_path / "straight" / "checkpoints" / "last.pt")
    b = ckpt.load(tmp_path / "resumed" / "checkpoints" / "last.pt")
    assert a["step"] == b["step"] == 40
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
