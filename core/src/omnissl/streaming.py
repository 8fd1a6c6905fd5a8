"""Data larger than memory: when to stream, and the on-disk cache of derived features that lazy sources read.

A *lazy* source is an ordinary random-access source (``__len__``, ``batch(indices)``, ``labels``,
``splits``) whose ``batch`` reads only the rows it is asked for from a cache on disk. Everything else
follows from the engine: :class:`omnissl.positions.TaskStream` shards each epoch's permutation across
ranks, the loader's workers call ``batch`` ahead of the loop, and the stream position in the checkpoint
makes a resume exact. So nothing here knows about ranks or workers.

The cache (:func:`open_or_build`) holds derived features (log-mel frames, resampled waveforms, encoded
table rows) written once, in one streaming pass over the raw files:

- it lives under ``$OMNISSL_CACHE`` (default ``~/.cache/omnissl``), never beside the raw files;
- its key hashes the source (every file's path, size and modification time) and the feature settings, so
  a changed setting or a changed file makes a new cache and never reads a stale one;
- it is built in a temporary folder and renamed into place, with a ``meta.json`` recording every file's
  size: a killed build leaves only a temporary folder that is never read, and a cache whose files do not
  match their recorded sizes is rebuilt, with a warning;
- one process builds it (an ``flock`` per key): the other ranks of a torchrun job, or a second run,
  wait and then read it.

Rows are read with ``os.pread`` (:class:`PackedRows`) rather than through ``np.memmap``: a memory map's
pages count in the resident set once touched, so a long epoch over a memory-mapped corpus would show
RSS growing with the corpus even though the kernel may drop those pages. Explicit reads keep the
process's memory independent of the corpus size, which is what ``benchmarks/streaming.py`` measures.
No library offers this small keyed, atomic feature cache (``datasets`` caches its own map outputs only),
hence this module.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import uuid
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field

from omnissl.errors import DataError, storage_error
from omnissl.specs import ComponentConfig

META = "meta.json"
CACHE_VERSION = 1  # bump when a cache's layout changes: old caches then get new keys


class StreamingFields(ComponentConfig):
    """The fields a source that can stream adds to its config.

    Attributes:
        in_memory: ``"auto"`` (default: in memory when the estimated size fits ``memory_budget_gb``),
            ``true`` (always in memory, the behaviour before streaming existed) or ``false`` (always lazy:
            features cached on disk, each batch read from the cache in the loader's workers).
        memory_budget_gb: the budget ``auto`` compares the estimate with (default ``None``: half of the
            machine's physical memory).
        cache_dir: where lazy sources write their feature cache (default ``None``: ``$OMNISSL_CACHE``, else
            ``~/.cache/omnissl``).
    """

    in_memory: Literal["auto"] | bool = "auto"
    memory_budget_gb: float | None = Field(None, gt=0)
    cache_dir: str | None = None


def physical_memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def choose_in_memory(mode: Literal["auto"] | bool, estimated_bytes: float, budget_gb: float | None) -> tuple[bool, str]:
    """``(in_memory, why)``: the decision for ``data.in_memory`` and a sentence the loader prints."""
    if mode is True or mode is False:
        return mode, f"data.in_memory: {str(mode).lower()}"
    budget = budget_gb * 2**30 if budget_gb is not None else physical_memory_bytes() / 2
    fits = estimated_bytes <= budget
    where = f"data.memory_budget_gb {budget_gb}" if budget_gb is not None else "half the physical memory"
    return fits, f"estimated {estimated_bytes / 2**30:.3g} GiB {'fits' if fits else 'exceeds'} {where} ({budget / 2**30:.3g} GiB)"


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    if cache_dir:
        return Path(os.path.expandvars(str(cache_dir))).expanduser()
    return Path(os.environ.get("OMNISSL_CACHE") or Path.home() / ".cache" / "omnissl")


def file_fingerprint(paths: Iterable[Path]) -> list[tuple[str, int, int]]:
    """``(absolute path, size, mtime_ns)`` per file: what a cache key must change with."""
    out = []
    for p in paths:
        try:
            st = os.stat(p)
            out.append((str(Path(p).resolve()), st.st_size, st.st_mtime_ns))
        except OSError:  # missing or unreadable: the source skips or reports it; a later fix changes the key
            out.append((str(Path(p).resolve()), -1, -1))
    return out


def cache_key(kind: str, fingerprint: Sequence[Any], settings: dict[str, Any]) -> str:
    blob = json.dumps({"version": CACHE_VERSION, "kind": kind, "source": list(fingerprint), "settings": settings}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _valid(folder: Path) -> bool:
    try:
        meta = json.loads((folder / META).read_text())
        return all((folder / name).stat().st_size == size for name, size in meta["files"].items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


def open_or_build(kind: str, fingerprint: Sequence[Any], settings: dict[str, Any], build: Callable[[Path], dict[str, Any]], cache_dir: str | None = None) -> tuple[Path, dict[str, Any], bool]:
    """The cache folder for ``(kind, fingerprint, settings)``, built by ``build(tmp_folder)`` if missing.

    ``build`` writes its files into the folder it is given and returns JSON-serialisable metadata; the
    folder is renamed into place only after ``build`` returns and ``meta.json`` (with every file's size)
    is written. Returns ``(folder, metadata, built_now)``.
    """
    root = cache_root(cache_dir) / kind
    final = root / cache_key(kind, fingerprint, settings)
    try:
        root.mkdir(parents=True, exist_ok=True)
        lock = open(root / f".{final.name}.lock", "w")
    except OSError as exc:
        raise storage_error(exc, root) from None
    # one builder per cache: other ranks (or runs) wait here, then find it built; the kernel drops the lock
    # if the builder dies, so a killed build never blocks the next one
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _open_or_build_locked(root, final, kind, settings, build)


def _open_or_build_locked(root: Path, final: Path, kind: str, settings: dict[str, Any], build: Callable[[Path], dict[str, Any]]) -> tuple[Path, dict[str, Any], bool]:
    if final.is_dir():
        if _valid(final):
            return final, json.loads((final / META).read_text())["meta"], False
        warnings.warn(f"feature cache {final} is incomplete or corrupted (a file's size differs from {META}); rebuilding it", stacklevel=2)
        shutil.rmtree(final, ignore_errors=True)
    tmp = root / f".tmp-{final.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir(parents=True)
        # building must not move the global RNG: a run that builds the cache and one that reuses it must
        # initialise the same model (a DataLoader in ``build`` draws its base seed from the global RNG)
        with torch.random.fork_rng(devices=[]):
            meta = build(tmp)
        files = {p.name: p.stat().st_size for p in tmp.iterdir() if p.is_file()}
        (tmp / META).write_text(json.dumps({"kind": kind, "settings": settings, "files": files, "meta": meta}, default=str))
        try:
            os.rename(tmp, final)
        except OSError:  # another process finished the same cache first: keep theirs
            if not _valid(final):
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise storage_error(exc, tmp) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final, json.loads((final / META).read_text())["meta"], True


class PackedWriter:
    """Appends variable-length ``(L_i, *row_shape)`` arrays of one dtype to a file; records offsets and lengths."""

    def __init__(self, path: Path, dtype: str, row_shape: tuple[int, ...] = ()):
        self.path, self.dtype, self.row_shape = Path(path), np.dtype(dtype), tuple(row_shape)
        self.fh = open(self.path, "wb")
        self.lengths: list[int] = []

    def append(self, item: np.ndarray) -> None:
        item = np.ascontiguousarray(item, dtype=self.dtype)
        if item.shape[1:] != self.row_shape:
            raise ValueError(f"{self.path.name}: row shape {item.shape[1:]} differs from {self.row_shape}")
        self.fh.write(item.tobytes())
        self.lengths.append(int(item.shape[0]))

    def close(self) -> dict[str, Any]:
        """Close the file; returns the layout :class:`PackedRows` needs (store it in the cache metadata)."""
        self.fh.close()
        np.save(self.path.with_suffix(".lengths.npy"), np.asarray(self.lengths, dtype=np.int64))
        return {"file": self.path.name, "dtype": self.dtype.str, "row_shape": list(self.row_shape)}


class PackedRows:
    """Reads item ``i`` of a :class:`PackedWriter` file with one ``os.pread``; picklable into loader workers.

    The file descriptor is opened on first use in each process (a forked worker never shares its parent's
    file offset, and ``pread`` has none to share anyway).
    """

    def __init__(self, folder: Path, layout: dict[str, Any]):
        self.path = Path(folder) / layout["file"]
        self.dtype, self.row_shape = np.dtype(layout["dtype"]), tuple(layout["row_shape"])
        self.lengths = np.load(self.path.with_suffix(".lengths.npy"))
        self.offsets = np.cumsum(self.lengths) - self.lengths
        self.row_bytes = self.dtype.itemsize * int(np.prod(self.row_shape, dtype=np.int64))
        self._fd: int | None = None
        self._pid = -1

    def __len__(self) -> int:
        return int(self.lengths.shape[0])

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_fd": None, "_pid": -1}

    def __del__(self, _close=os.close, _getpid=os.getpid) -> None:  # bound early: module globals may be gone at exit
        if self._fd is not None and self._pid == _getpid():
            _close(self._fd)

    def read(self, i: int) -> np.ndarray:
        if self._pid != os.getpid():
            self._fd, self._pid = os.open(self.path, os.O_RDONLY), os.getpid()
        n = int(self.lengths[i])
        data = bytearray(n * self.row_bytes)  # writable, so torch.from_numpy takes it without a copy
        if os.preadv(self._fd, [data], int(self.offsets[i]) * self.row_bytes) != len(data):
            raise DataError(f"feature cache file {self.path} is shorter than its index says; delete {self.path.parent} to rebuild it")
        return np.frombuffer(data, dtype=self.dtype).reshape((n, *self.row_shape))


class FixedRows:
    """Rows of one fixed shape in a flat file (``N x row_shape``, C order): ``read(rows)`` gathers them with one ``pread`` each.

    No per-row index is held (row ``i`` starts at ``i * row_bytes``), so memory does not grow with ``N``.
    """

    def __init__(self, path: Path, dtype: str, row_shape: tuple[int, ...]):
        self.path, self.dtype, self.row_shape = Path(path), np.dtype(dtype), tuple(row_shape)
        self.row_bytes = self.dtype.itemsize * int(np.prod(self.row_shape, dtype=np.int64))
        self.num_rows = os.path.getsize(self.path) // self.row_bytes if self.row_bytes else 0
        self._fd: int | None = None
        self._pid = -1

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_fd": None, "_pid": -1}

    def __del__(self, _close=os.close, _getpid=os.getpid) -> None:
        if self._fd is not None and self._pid == _getpid():
            _close(self._fd)

    def read(self, rows: Sequence[int]) -> np.ndarray:
        out = np.empty((len(rows), *self.row_shape), dtype=self.dtype)
        if not self.row_bytes or not len(rows):
            return out
        if self._pid != os.getpid():
            self._fd, self._pid = os.open(self.path, os.O_RDONLY), os.getpid()
        view = memoryview(out).cast("B")  # the output's bytes: each row is read straight into its place
        for j, i in enumerate(rows):
            if os.preadv(self._fd, [view[j * self.row_bytes : (j + 1) * self.row_bytes]], int(i) * self.row_bytes) != self.row_bytes:
                raise DataError(f"feature cache file {self.path} is shorter than its row {i}; delete {self.path.parent} to rebuild it")
        return out
