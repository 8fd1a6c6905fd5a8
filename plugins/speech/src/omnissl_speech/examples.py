"""Tiny real inputs of every speech dataset's format, for ``DatasetSpec.example`` (the contract suite builds each).

``write_recordings(folder)`` writes 16 short WAV files (soundfile, 8 kHz) named as FSDD names its recordings,
``{digit}_{speaker}_{index}.wav``; the folder, manifest and FSDD examples read them. Seeded: the same files on
every call.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

RATE = 8000
SPEAKERS = ("alice", "bob")


def write_recordings(folder: Path) -> Path:
    """``recordings/`` with digits 0 and 1 by two speakers at FSDD indices 0 (test), 5 (val), 10 and 11 (train).

    Each recording is 0.15-0.3 s of a tone whose pitch depends on the digit, with speaker-dependent noise.
    """
    import soundfile

    rng = np.random.default_rng(0)
    root = folder / "recordings"
    root.mkdir(parents=True, exist_ok=True)
    for digit in (0, 1):
        for s, speaker in enumerate(SPEAKERS):
            for index in (0, 5, 10, 11):
                t = np.arange(int(RATE * rng.uniform(0.15, 0.3))) / RATE
                wave = 0.4 * np.sin(2 * np.pi * (300 + 200 * digit) * t) + 0.05 * (1 + s) * rng.normal(size=t.size)
                soundfile.write(str(root / f"{digit}_{speaker}_{index}.wav"), wave.astype(np.float32), RATE)
    return root


def folder_example(folder: Path) -> dict:
    """``speech.folder`` with labels from the file names."""
    return {"path": str(write_recordings(folder)), "sample_rate": RATE, "label_pattern": r"(?P<digit>\d+)_(?P<speaker>[A-Za-z]+)_(?P<index>\d+)",
            "val_fraction": 0.25, "test_fraction": 0.25}


def manifest_example(folder: Path) -> dict:
    """``speech.manifest``: a CSV of relative paths with a ``digit`` label and a ``split`` column."""
    root = write_recordings(folder)
    rows = [f"recordings/{p.name},{p.stem.split('_')[0]},{('test', 'val', 'train', 'train')[i % 4]}" for i, p in enumerate(sorted(root.glob("*.wav")))]
    (folder / "manifest.csv").write_text("path,digit,split\n" + "\n".join(rows) + "\n")
    return {"path": str(folder / "manifest.csv"), "sample_rate": RATE}


def fsdd_example(folder: Path) -> dict:
    """``speech.fsdd`` on the FSDD file names (index 0-4 test, 5-9 val, the rest train)."""
    return {"path": str(write_recordings(folder))}


def write_hf_dataset(folder: Path, stored_decode: bool = True) -> Path:
    """``hf/``: the recordings as a HF ``DatasetDict`` (train / validation / test by FSDD index) saved with
    ``save_to_disk``: an ``audio`` column of WAV bytes, a ``ClassLabel`` ``digit`` and a string ``speaker``.

    The audio column is written as ``Audio(decode=False)`` from the bytes (``datasets`` encodes audio through
    torchcodec otherwise) and, with ``stored_decode``, saved as a plain ``Audio()`` column, as a user's
    dataset usually is: reading it back must not need torchcodec.
    """
    from datasets import Audio, ClassLabel, Dataset, DatasetDict, Features, Value

    root = write_recordings(folder)
    features = Features({"audio": {"bytes": Value("binary"), "path": Value("string")}, "digit": ClassLabel(names=["zero", "one"]), "speaker": Value("string")})
    splits: dict[str, list[Path]] = {"train": [], "validation": [], "test": []}
    for p in sorted(root.glob("*.wav")):
        index = int(p.stem.split("_")[2])
        splits["test" if index <= 4 else "validation" if index <= 9 else "train"].append(p)
    parts = {}
    for name, paths in splits.items():
        rows = {"audio": [{"bytes": p.read_bytes(), "path": p.name} for p in paths],
                "digit": [int(p.stem.split("_")[0]) for p in paths], "speaker": [p.stem.split("_")[1] for p in paths]}
        part = Dataset.from_dict(rows, features=features).cast_column("audio", Audio(decode=False))
        parts[name] = part.cast_column("audio", Audio()) if stored_decode else part
    out = folder / "hf"
    DatasetDict(parts).save_to_disk(str(out))
    return out


def hf_dataset_example(folder: Path) -> dict:
    """``speech.hf_dataset`` on the recordings saved as a HF ``DatasetDict`` with its own splits."""
    return {"path": str(write_hf_dataset(folder)), "sample_rate": RATE}
