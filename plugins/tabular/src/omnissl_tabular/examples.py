"""Tiny real inputs of every tabular dataset's format, for ``DatasetSpec.example`` (the contract suite builds each).

``write_csv(folder)`` writes a table as users have them (a header row, numeric and text columns, ``?`` for a
missing cell, a class target) and returns the parameters that read it; ``tabular.sklearn`` reads a table
bundled with scikit-learn, so its example only picks the smallest one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_csv(folder: Path) -> dict:
    """``people.csv``: 40 rows of age, hours (one missing), workclass, colour and the class target ``income``."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["age,hours,workclass,colour,income"]
    for i in range(40):
        rich = i % 2
        hours = "?" if i == 7 else f"{30 + 10 * rich + rng.normal(0, 3):.1f}"
        lines.append(f"{int(25 + 20 * rich + rng.integers(0, 10))},{hours},{('Private', 'State-gov', 'Self-emp')[i % 3]},"
                     f"{('red', 'blue')[int(rng.integers(0, 2))]},{'>50K' if rich else '<=50K'}")
    (folder / "people.csv").write_text("\n".join(lines) + "\n")
    return {"path": str(folder / "people.csv"), "target": "income"}


def sklearn_example(folder: Path) -> dict:
    """``tabular.sklearn`` on ``wine`` (178 rows, 13 numeric columns, 3 classes), its smallest table."""
    return {"table": "wine"}
