"""The lazy path under torchrun and after a kill: every rank and worker reads its own share, a resume continues exactly.

Both run the real CLI (``trace_cli.py``) on a lazy ``speech.folder`` whose batches are traced to files.
"""

import json
import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import torch

from omnissl import checkpoint as ckpt

ROOT = Path(__file__).resolve().parents[2]
TRACE_CLI = Path(__file__).with_name("trace_cli.py")
PATTERN = r"(?P<vowel>\d+)_(?P<speaker>\d+)_(?P<index>\d+)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(tmp_path, wav_folder, out: str, steps: int, workers: int, batch: int) -> Path:
    cfg = {
        "seed": 3,
        "tasks": [{"name": "s", "data": {"name": "test.traced_folder", "path": str(wav_folder), "label_pattern": PATTERN,
                                         "keep_waveform": False, "in_memory": False},
                   "encoder": {"name": "speech.frame_transformer", "dim": 32, "depth": 1, "heads": 2},
                   "views": {"name": "speech.tera_alteration"}, "objective": {"name": "speech.tera"}}],
        "engine": {"steps": steps, "batch_size": batch, "workers": workers, "device": "cpu",
                   "optimizer": {"name": "adamw", "lr": 1e-3}, "checkpoint": {"every": 3, "keep": 2}},
        "eval": {"every": None, "at_end": False},
        "logging": {"out_dir": str(tmp_path / out), "log_every": 1, "progress": False},
    }
    path = tmp_path / f"{out}.json"
    path.write_text(json.dumps(cfg))
    return path


def _env(tmp_path, trace: str, **extra) -> dict:
    (tmp_path / trace).mkdir(exist_ok=True)
    return {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1", "TRACE_DIR": str(tmp_path / trace), **extra}


def _consumed(trace_dir: Path, workers: int, steps: int) -> dict[int, list[list[int]]]:
    """Per rank, the loop's batches in order (dropping those workers prepared beyond ``steps``)."""
    by_rank: dict[int, dict[int, list[int]]] = {}
    for file in trace_dir.glob("*.txt"):
        for line in file.read_text().splitlines():
            rank, worker, made, *ids = map(int, line.split())
            if worker < 0:  # the main process (monitors, components sized from data), not the loop's batches
                continue
            position = made * max(workers, 1) + worker
            if position < steps:
                assert position not in by_rank.setdefault(rank, {}), "two batches claim one position"
                by_rank[rank][position] = ids
    return {rank: [batches[p] for p in sorted(batches)] for rank, batches in by_rank.items()}


def test_two_processes_two_workers_read_disjoint_shares(tmp_path, wav_folder):
    """32 utterances, global batch 8: one epoch is 4 steps; the 2 ranks x 2 workers read each utterance once."""
    cfg = _config(tmp_path, wav_folder, "run", steps=4, workers=2, batch=8)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}", str(TRACE_CLI), "pretrain", str(cfg)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=_env(tmp_path, "trace"), timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    consumed = _consumed(tmp_path / "trace", workers=2, steps=4)
    assert sorted(consumed) == [0, 1] and all(len(b) == 4 and all(len(x) == 4 for x in b) for b in consumed.values())
    seen = Counter(i for batches in consumed.values() for batch in batches for i in batch)
    assert sorted(seen) == list(range(32)) and set(seen.values()) == {1}, "an utterance read twice, or one missed, in the epoch"
    lines = [line.split() for f in (tmp_path / "trace").glob("*.txt") for line in f.read_text().splitlines()]
    workers_used = {(int(rank), int(worker)) for rank, worker, *_ in lines if int(worker) >= 0}
    assert workers_used == {(0, 0), (0, 1), (1, 0), (1, 1)}  # each rank's two workers both decoded


def test_sigkill_then_resume_continues_exactly(tmp_path, wav_folder):
    """SIGKILL after step 7 (last checkpoint: step 6); ``--resume`` reads the same batches an unbroken run reads."""
    steps = 12  # 32 utterances, batch 8: three epochs, so the resume crosses an epoch boundary
    straight_cfg = _config(tmp_path, wav_folder, "straight", steps, workers=2, batch=8)
    done = subprocess.run([sys.executable, str(TRACE_CLI), "pretrain", str(straight_cfg)], capture_output=True, text=True,
                          env=_env(tmp_path, "t_straight"), timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    cfg = _config(tmp_path, wav_folder, "run", steps, workers=2, batch=8)
    killed = subprocess.run([sys.executable, str(TRACE_CLI), "pretrain", str(cfg)], capture_output=True, text=True,
                            env=_env(tmp_path, "t_killed", KILL_AT="7"), timeout=300, cwd=ROOT)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert ckpt.load(tmp_path / "run" / "checkpoints" / "last.pt")["step"] == 6
    resumed = subprocess.run([sys.executable, str(TRACE_CLI), "pretrain", str(cfg), "--resume"], capture_output=True, text=True,
                             env=_env(tmp_path, "t_resumed"), timeout=300, cwd=ROOT)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    straight = _consumed(tmp_path / "t_straight", 2, steps)[0]
    assert _consumed(tmp_path / "t_killed", 2, 7)[0] == straight[:7]
    assert _consumed(tmp_path / "t_resumed", 2, steps - 6)[0] == straight[6:]
    a, b = ckpt.load(tmp_path / "straight" / "checkpoints" / "last.pt"), ckpt.load(tmp_path / "run" / "checkpoints" / "last.pt")
    assert a["step"] == b["step"] == steps
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
