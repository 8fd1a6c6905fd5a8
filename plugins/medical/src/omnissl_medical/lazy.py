"""NIfTI folders larger than memory: volumes preprocessed once into the feature cache, each batch read on demand.

``medical.nifti`` takes this path when ``data.in_memory`` is ``false``, or ``auto`` and ``N x C x size``
float32 voxels exceed ``data.memory_budget_gb`` (:mod:`omnissl.streaming`). One pass runs the same
:func:`omnissl_medical.nifti.preprocess` as the in-memory path (reorient, resample, intensity, crop, size)
on one file at a time and appends the ``(C, D, H, W)`` float32 volume to ``volumes.f32`` in the cache
(the "resampled volumes" cache: the key covers every file's path, size and mtime and the preprocessing
settings). :class:`LazyVolumeSource` reads the volumes a batch asks for with one ``pread`` each, in the
engine's loader workers, so the batches equal the in-memory source's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from omnissl import streaming
from omnissl.errors import DataError
from omnissl_medical.datasets import VolumeSource
from omnissl_medical.nifti import preprocess, read_nifti


def estimated_bytes(files: list[Path], cfg) -> float:
    """``N x C x prod(size) x 4`` bytes, the channel count from the first file's header."""
    shape = read_nifti(files[0]).shape  # a corrupt first file: the DataError naming it, as on the in-memory path
    channels = shape[3] if len(shape) > 3 else 1
    return len(files) * channels * float(np.prod(cfg.preprocessing.size)) * 4


def _write_cache(folder: Path, files: list[Path], cfg) -> dict[str, Any]:
    channels = None
    with open(folder / "volumes.f32", "wb") as fh:
        for path in files:
            array = preprocess(path, cfg.preprocessing).array
            if channels is None:
                channels = array.shape[0]
            elif array.shape[0] != channels:
                raise DataError(f"{path}: {array.shape[0]} channels where {files[0].name} has {channels}; every volume needs the same channel count")
            fh.write(np.ascontiguousarray(array, dtype=np.float32).tobytes())
    return {"shape": [channels, *cfg.preprocessing.size]}


class LazyVolumeSource(VolumeSource):
    """A :class:`VolumeSource` whose volumes stay in the cache; ``gather(idx)`` reads them (on the CPU)."""

    def __init__(self, folder: Path, meta: dict[str, Any], labels: dict[str, Tensor], splits: dict[str, Tensor], names: list[str],
                 pretrain_split: str | None, surface_size: int, decision: str):
        self.folder, self.decision = folder, decision
        self.rows = streaming.FixedRows(folder / "volumes.f32", "float32", tuple(meta["shape"]))
        self.scale, self.labels, self.splits, self.names, self.surface_size = 1.0, labels, splits, names, surface_size
        if pretrain_split is not None and pretrain_split not in splits:
            raise DataError(f"pretrain_split {pretrain_split!r} is not a split of this dataset; choose one of {sorted(splits)} or null")
        self.pretrain_index = splits[pretrain_split].clone() if pretrain_split else torch.arange(self.rows.num_rows)

    @property
    def num_volumes(self) -> int:
        return self.rows.num_rows

    @property
    def volume_shape(self) -> tuple[int, int, int, int]:
        return self.rows.row_shape  # type: ignore[return-value]

    def batch(self, indices: Tensor) -> Tensor:
        return self.gather(self.pretrain_index[indices.cpu()])

    def gather(self, idx: Tensor) -> Tensor:
        """The ``(B, C, D, H, W)`` float32 batch of absolute volume indices, read from the cache."""
        return torch.from_numpy(self.rows.read(idx.cpu().tolist()))

    def to(self, device: torch.device | str) -> LazyVolumeSource:
        self.labels = {k: v.to(device) for k, v in self.labels.items()}
        self.splits = {k: v.to(device) for k, v in self.splits.items()}
        return self

    def describe(self) -> str:
        return f"{super().describe()}; volumes streamed from the cache {self.folder}; {self.decision}"


def build_lazy(cfg, files: list[Path], labels: dict[str, Tensor], splits: dict[str, Tensor], decision: str) -> LazyVolumeSource:
    settings = {"preprocessing": cfg.preprocessing.model_dump()}
    folder, meta, built = streaming.open_or_build("medical", streaming.file_fingerprint(files), settings,
                                                  lambda tmp: _write_cache(tmp, files, cfg), cfg.cache_dir)
    return LazyVolumeSource(folder, meta, labels, splits, [p.name for p in files], cfg.pretrain_split, cfg.surface_size,
                            f"{decision}; cache {'built now' if built else 'reused'}")
