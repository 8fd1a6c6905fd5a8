"""A run's output folder: the exclusive lock, the run marker, archiving an earlier run, stale temporaries.

Guarantees (docs/architecture.md, "Guarantees"):

- **One run per folder.** :class:`RunLock` holds an exclusive ``flock`` on ``out_dir/.omnissl.lock`` for
  the life of a run and writes the holder's pid, host and start time into it. A second run in the same
  folder fails at once, naming the first. The kernel drops a ``flock`` when its process dies (even by
  SIGKILL), so a lock file whose content names a holder but whose lock is free was left by a dead
  process: it is taken over with a warning.
- **Only a run is archived.** The engine writes a marker (``out_dir/.omnissl-run``) when a run starts. A
  fresh run in a folder with a marker moves that run's files to ``previous-<time>/``; a folder that holds
  files but no marker is someone else's and is an error unless the user forces it (then only the names a
  run writes are moved aside, everything else stays where it is).

Hand-written because no library in the stack does it: ``filelock`` would add a dependency for thirty lines
and does not report the holder; ``fcntl.flock`` is what it wraps.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from omnissl.errors import OmnisslError, storage_error

try:
    import fcntl
except ImportError:  # Windows: the lock falls back to O_EXCL creation (see RunLock)
    fcntl = None

LOCK_NAME = ".omnissl.lock"
MARKER_NAME = ".omnissl-run"
RUN_FILES = ("config.json", "metrics.jsonl", "evals.jsonl", "best.json", "checkpoints", "tensorboard", MARKER_NAME)
IGNORED = (LOCK_NAME,)


class RunDirError(OmnisslError):
    """``out_dir`` cannot be used: another run holds it, or it holds files that are not an omnissl run."""

    exit_code = 2


def _describe(holder: dict) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder["started"])) if "started" in holder else "an unknown time"
    return f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}, started {when}"


class RunLock:
    """Exclusive lock on ``out_dir`` for the life of a run: ``lock = RunLock(out_dir); warning = lock.acquire()``.

    ``acquire`` raises :class:`RunDirError` naming the holder when another live process holds the folder,
    and returns a warning line (or ``None``) when it took over a lock left by a dead process.
    """

    def __init__(self, out_dir: Path):
        self.path = Path(out_dir) / LOCK_NAME
        self.fd: int | None = None

    def _read_holder(self) -> dict:
        try:
            return json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return {}

    def acquire(self) -> str | None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise storage_error(exc, self.path) from None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise RunDirError(
                    f"logging.out_dir {self.path.parent} is in use by another omnissl run ({_describe(self._read_holder())}). "
                    "Wait for it to finish, stop it, or set logging.out_dir to another folder."
                ) from None
        holder = self._read_holder()
        stale = None
        if holder.get("pid") and (holder.get("pid"), holder.get("host")) != (os.getpid(), socket.gethostname()):
            if fcntl is None and holder.get("host") == socket.gethostname() and _alive(int(holder["pid"])):
                os.close(fd)
                raise RunDirError(f"logging.out_dir {self.path.parent} is in use by another omnissl run ({_describe(holder)}).")
            stale = f"took over the lock of {self.path.parent}, left by a run that is gone ({_describe(holder)})"
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(me).encode(), 0)
        except OSError as exc:
            os.close(fd)
            raise storage_error(exc, self.path) from None
        self.fd = fd
        return stale

    def release(self) -> None:
        """Empty the lock file (an empty file is a free folder) and drop the lock; the file stays, see below."""
        if self.fd is None:
            return
        # Not unlinked: a process that opened the old file before an unlink could lock it while a third
        # creates a new one, and both would believe they hold the folder.
        try:
            os.ftruncate(self.fd, 0)
        except OSError:
            pass  # a full or read-only disk must not hide the run's own error; the lock still drops below
        os.close(self.fd)
        self.fd = None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def listing(out_dir: Path) -> list[str]:
    """Names in ``out_dir`` (empty when it does not exist), without the lock file."""
    try:
        return sorted(p.name for p in Path(out_dir).iterdir() if p.name not in IGNORED)
    except FileNotFoundError:
        return []
    except NotADirectoryError:
        raise RunDirError(f"logging.out_dir {out_dir} is a file; set logging.out_dir to a folder") from None


def is_run(out_dir: Path) -> bool:
    return (Path(out_dir) / MARKER_NAME).is_file()


def prepare_fresh(out_dir: Path, found: list[str], force: bool = False) -> Path | None:
    """Make room for a fresh run; return the ``previous-<time>/`` folder an earlier run was moved to, if any.

    ``found`` is what ``out_dir`` held before the run started building (datasets may write into it, such
    as the recommender id map). An earlier run (marker present) has its files moved aside. A folder with
    other content and no marker is an error unless ``force``; then the names a run writes are moved aside
    and the rest is left in place.
    """
    out_dir = Path(out_dir)
    others = [n for n in found if not n.startswith("previous-")]
    if not others:
        return None
    if not is_run(out_dir) and not force:
        shown = ", ".join(others[:8]) + (f" and {len(others) - 8} more" if len(others) > 8 else "")
        raise RunDirError(
            f"logging.out_dir {out_dir} holds files that are not an omnissl run ({shown}); nothing was moved. "
            "Set logging.out_dir to an empty or new folder, or pass --force-out-dir to write there anyway "
            "(files with the names a run writes are then moved to previous-<time>/, the others are left alone)."
        )
    moving = [out_dir / name for name in RUN_FILES if (out_dir / name).exists() or (out_dir / name).is_symlink()]
    if not moving:
        return None
    dest = out_dir / time.strftime("previous-%Y%m%d-%H%M%S")
    while dest.exists():
        dest = dest.with_name(dest.name + "+")
    try:
        dest.mkdir(parents=True)
        for path in moving:
            path.rename(dest / path.name)
    except OSError as exc:
        raise storage_error(exc, dest) from None
    return dest


def write_marker(out_dir: Path) -> None:
    """Mark ``out_dir`` as an omnissl run (what :func:`prepare_fresh` recognises)."""
    from importlib import metadata

    path = Path(out_dir) / MARKER_NAME
    if path.is_file():
        return
    try:
        path.write_text(json.dumps({"omnissl": metadata.version("omnissl"), "created": time.time()}) + "\n")
    except OSError as exc:
        raise storage_error(exc, path) from None


def remove_stale_temporaries(checkpoint_dir: Path) -> list[Path]:
    """Delete ``.<name>.tmp-<pid>`` files a killed save left behind (the caller holds the folder's lock)."""
    removed = []
    if Path(checkpoint_dir).is_dir():
        for tmp in Path(checkpoint_dir).glob(".*.tmp-*"):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def roll_back_log(path: Path, step: int) -> int:
    """Move lines of a JSONL log with ``step`` after ``step`` to ``<name>.rolled-back.jsonl``; return how many.

    After a resume from a checkpoint at ``step``, lines logged past it describe training the checkpoint does
    not contain; left in place they would repeat steps in the log. They are kept aside, not deleted.
    """
    if not path.is_file():
        return 0
    keep, later = [], []
    for line in path.read_text().splitlines(keepends=True):
        if not line.endswith("\n"):  # cut by a kill mid-write: the next line would be glued to it
            later.append(line + "\n")
            continue
        try:
            logged = int(json.loads(line).get("step", 0))
        except (ValueError, AttributeError, TypeError):
            logged = 0  # not ours to judge: leave it where it is
        (later if logged > step else keep).append(line)
    if not later:
        return 0
    aside = path.with_name(path.stem + ".rolled-back.jsonl")
    try:
        with open(aside, "a") as fh:
            fh.writelines(later)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text("".join(keep))
        os.replace(tmp, path)
    except OSError as exc:
        raise storage_error(exc, path) from None
    return len(later)
