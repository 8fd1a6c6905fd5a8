"""Issue 11 items 1 and 10: one run per out_dir (exclusive lock), and only an omnissl run is ever moved aside."""

import json
import os
import signal
import socket
import time

from omnissl import checkpoint as ckpt
from omnissl.rundir import LOCK_NAME, MARKER_NAME

from tests.reliability.helpers import assert_unchanged, cli, snapshot, spawn, write_config


def test_second_run_in_a_busy_out_dir_exits_2_naming_the_first(quiet_toy, tmp_path, capsys):
    """The old code let both runs exit 0 with one last.pt; now the second stops before touching anything."""
    out = tmp_path / "run"
    quiet_toy["engine"]["steps"] = 1_000_000
    first_cfg = write_config(tmp_path / "first.yaml", quiet_toy)
    first = spawn("pretrain", first_cfg)
    try:
        deadline = time.monotonic() + 120
        while not (out / "metrics.jsonl").is_file() or not (out / "metrics.jsonl").read_text():
            assert first.poll() is None, first.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the first run did not start logging in 120 s"
            time.sleep(0.2)
        before = snapshot(out)
        quiet_toy["engine"]["steps"] = 4
        second = cli(capsys, "pretrain", write_config(tmp_path / "second.yaml", quiet_toy))
        second.clean_exit_2()
        assert f"in use by another omnissl run (pid {first.pid} on host {socket.gethostname()}" in second.err
        assert not list(out.glob("previous-*"))  # the old code moved the first run's files aside
        for rel in before:
            assert (out / rel).exists(), f"{rel} of the running run disappeared"
    finally:
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=120)
    assert first.returncode == 128 + signal.SIGTERM, err[-3000:]
    state = ckpt.load(out / "checkpoints" / "last.pt")
    assert state["step"] > 0 and json.loads(state["config"])["engine"]["steps"] == 1_000_000


def test_stale_lock_of_a_dead_run_is_taken_over_with_a_warning(quiet_toy, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK_NAME).write_text(json.dumps({"pid": 2**22 + 17, "host": "gone-host", "started": time.time() - 60}))
    result = cli(capsys, "pretrain", write_config(tmp_path / "c.yaml", quiet_toy))
    assert result.rc == 0, result.err
    assert "took over the lock" in result.err and f"pid {2**22 + 17} on host gone-host" in result.err
    assert (out / LOCK_NAME).read_text() == ""  # released: an empty lock file is a free folder
    assert ckpt.load(out / "checkpoints" / "last.pt")["step"] == 6


def test_a_folder_that_is_not_a_run_is_refused_and_left_alone(quiet_toy, tmp_path, capsys):
    """The old code moved someone's own checkpoints/ into previous-<time>/."""
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "mine.pt").write_bytes(b"my own weights")
    (out / "notes.txt").write_text("mine")
    before = snapshot(out)
    cfg = write_config(tmp_path / "c.yaml", quiet_toy)
    result = cli(capsys, "pretrain", cfg)
    result.clean_exit_2()
    assert "holds files that are not an omnissl run (checkpoints, notes.txt)" in result.err and "--force-out-dir" in result.err
    assert_unchanged(before, out)
    # with the explicit flag: the names a run writes are moved aside, everything else stays
    forced = cli(capsys, "pretrain", cfg, "--force-out-dir")
    assert forced.rc == 0, forced.err
    (moved,) = out.glob("previous-*")
    assert (moved / "checkpoints" / "mine.pt").read_bytes() == b"my own weights"
    assert (out / "notes.txt").read_text() == "mine" and (out / MARKER_NAME).is_file()


def test_a_marked_run_is_archived_by_a_fresh_run(quiet_toy, tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", quiet_toy)
    assert cli(capsys, "pretrain", cfg).rc == 0
    first = snapshot(tmp_path / "run")
    again = cli(capsys, "pretrain", cfg)
    assert again.rc == 0 and "held an earlier run" in again.err
    (moved,) = (tmp_path / "run").glob("previous-*")
    assert {rel: d for rel, d in snapshot(moved).items()} == first
    assert os.path.getsize(tmp_path / "run" / "checkpoints" / "last.pt") > 0
