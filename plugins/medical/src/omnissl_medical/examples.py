"""Tiny real inputs of the medical datasets' formats, for ``DatasetSpec.example`` (the contract suite builds each).

``write_medmnist3d(folder)`` writes a MedMNIST v2 3-D archive as the official files hold it (``uint8``
volumes ``(N, 28, 28, 28)`` and ``(N, 1)`` labels per split in one ``.npz``); ``medical.nifti``'s example
is :func:`omnissl_medical.datasets.write_example_folder`. Seeded: the same file on every call.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_medmnist3d(folder: Path) -> dict:
    """``tinymnist3d.npz``: 6 train, 2 val and 2 test 28³ ``uint8`` volumes, a bright cube in class 1 only."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, n in (("train", 6), ("val", 2), ("test", 2)):
        labels = np.arange(n) % 2
        volumes = rng.integers(0, 60, size=(n, 28, 28, 28), dtype=np.uint8)
        volumes[labels == 1, 10:18, 10:18, 10:18] = 220
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = volumes, labels[:, None].astype(np.uint8)
    np.savez_compressed(folder / "tinymnist3d.npz", **arrays)
    return {"path": str(folder / "tinymnist3d.npz")}
