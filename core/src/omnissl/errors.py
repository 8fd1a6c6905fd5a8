"""User-facing errors: each says what was wrong, where, and what to do.

The CLI prints them without a traceback and exits with status 2 (configuration and plugin errors) or 1.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


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


class TrainingError(OmnisslError):
    """Training cannot continue (for example a non-finite loss); the message names the last good checkpoint."""

    exit_code = 1


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or ``""``."""
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
