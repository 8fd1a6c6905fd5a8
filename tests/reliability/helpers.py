"""Shared helpers of the reliability suite: run the CLI, snapshot a folder, check nothing written was lost."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from omnissl.rundir import LOCK_NAME

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Outcome:
    rc: int
    out: str
    err: str

    def clean_exit_2(self) -> None:
        """The contract for a user mistake, bad data or a fault: status 2, one message, no traceback."""
        assert self.rc == 2, f"exit {self.rc}\nstdout: {self.out[-2000:]}\nstderr: {self.err[-3000:]}"
        assert "omnissl: error:" in self.err, self.err[-3000:]
        assert "Traceback" not in self.err and "Traceback" not in self.out, self.err[-3000:]


def cli(capsys, *argv: str) -> Outcome:
    """``omnissl ARGV`` in this process (plugins are loaded once): exit status and what it printed."""
    from omnissl.cli import main

    capsys.readouterr()
    rc = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return Outcome(rc, captured.out, captured.err)


def cli_process(*argv: str, env: dict | None = None, timeout: float = 300) -> Outcome:
    """``omnissl ARGV`` in a new process, for kills and concurrent runs."""
    done = subprocess.run([sys.executable, "-m", "omnissl.cli", *map(str, argv)], capture_output=True, text=True,
                          env=process_env(env), timeout=timeout, cwd=ROOT)
    return Outcome(done.returncode, done.stdout, done.stderr)


def spawn(*argv: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "omnissl.cli", *map(str, argv)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=process_env(env), cwd=ROOT)


def process_env(extra: dict | None = None) -> dict:
    path = os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(ROOT)]))
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path, "COLUMNS": "1000", **(extra or {})}


def write_config(path: Path, config: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(config, sort_keys=False))  # .inf and .nan stay numbers (JSON would write strings)
    return path


def snapshot(root: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``root`` except the run lock (which every run rewrites)."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file() and p.name != LOCK_NAME
    }


def assert_nothing_lost(before: dict[str, str], root: Path) -> None:
    """Every file of ``before`` is still there with the same bytes, in place or moved into ``previous-*/``."""
    after = snapshot(root)
    for rel, digest in before.items():
        kept = after.get(rel) == digest or any(
            after.get(f"{prev.name}/{rel}") == digest for prev in root.glob("previous-*")
        )
        assert kept, f"{rel} was lost or overwritten"


def assert_unchanged(before: dict[str, str], root: Path) -> None:
    """Nothing under ``root`` was added, removed or changed (the run lock aside)."""
    assert snapshot(root) == before
