"""Where the project's real datasets are: ``$OMNISSL_DATA``, else ``../shared/data`` from the working directory."""

from __future__ import annotations

import os
from pathlib import Path


def shared_data_dir() -> Path | None:
    """The real-data folder, or ``None`` when this machine has none (tests then skip)."""
    candidates = [os.environ.get("OMNISSL_DATA"), Path.cwd().parent / "shared" / "data", Path(__file__).resolve().parents[4].parent / "shared" / "data"]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None
