"""User-facing errors: each says what was wrong, where, and what to do.

The CLI prints them without a traceback and exits with status 2 (configuration and plugin errors) or 1.
"""

from __future__ import annotations

import difflib
import errno
import reprlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class OmnisslError(Exception):
    """Base class of errors caused by user input; ``exit_code`` is what the CLI returns."""

    exit_code = 2


class ConfigError(OmnisslError):
    """A run config is invalid. ``problems`` holds one line per problem, each starting with its key path."""

    exit_code = 2

    def __init__(self, problems: list[str], source: str | None = None):
        self.problems = problems
        self.source = source
        where = f" in {source}" if source else ""
        lines = "\n".join(f"  - {p}" for p in problems)
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"invalid run config{where} ({count}):\n{lines}")


class PluginError(OmnisslError):
    """A plugin failed to load, conflicts with another one, or is missing."""

    exit_code = 2


class DataError(OmnisslError):
    """Input data is malformed; the message names the file, line and column where known."""

    exit_code = 2


class CheckpointError(OmnisslError):
    """A checkpoint is missing, unreadable, fails its checksum, or does not fit the config."""

    exit_code = 2


class StorageError(OmnisslError):
    """The disk refused a write (full, read-only, no permission); the message names the cause and the file."""

    exit_code = 2


STORAGE_CAUSES = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EIO: "input/output error",
    errno.EFBIG: "file too large",
}


def storage_error(exc: OSError, path: str | Path | None = None, action: str = "writing") -> StorageError:
    """Turn an ``OSError`` from the disk into a :class:`StorageError` naming the cause and the file."""
    cause = STORAGE_CAUSES.get(exc.errno, exc.strerror or type(exc).__name__)
    where = path if path is not None else exc.filename
    return StorageError(
        f"{cause} while {action} {where}. Free space or fix the permissions, or point logging.out_dir at another disk; "
        "files already written (the previous checkpoint included) are intact."
    )


def short_repr(value: Any, limit: int = 200) -> str:
    """``repr(value)`` cut to about ``limit`` characters, so an error never echoes a huge input."""
    r = reprlib.Repr()
    r.maxstring, r.maxother, r.maxlist, r.maxdict, r.maxlevel = limit, limit, 8, 8, 3
    text = r.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class TrainingError(OmnisslError):
    """Training cannot continue (for example a non-finite loss); the message names the last good checkpoint."""

    exit_code = 1


def did_you_mean(value: str, choices: Iterable[str], cutoff: float = 0.6) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice (difflib ratio >= ``cutoff``), or ``""``."""
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=cutoff)
    return f" (did you mean {close[0]!r}?)" if close else ""
