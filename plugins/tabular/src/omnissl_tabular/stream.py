"""Tables larger than memory: CSV and Parquet read in chunks, encoded once into a row cache, batches gathered from disk.

``tabular.csv`` takes this path when ``data.in_memory`` is ``false``, or ``auto`` and the table's estimated
in-memory size exceeds ``data.memory_budget_gb`` (:mod:`omnissl.streaming`). The semantics are those of
:func:`omnissl_tabular.datasets.build_source`, reached in passes over
:func:`omnissl_tabular.reader.iter_table` chunks (pyarrow record batches for Parquet):

1. count the rows (Parquet metadata; one parse for CSV) and draw the same random splits;
2. over the train rows: each column's type (every present cell a number: numeric; at least 95% numbers:
   an error naming the first bad cell; else categorical), the categorical vocabularies, the targets'
   kind and classes; each column's train values go to a scratch file so that the median, mean and
   standard deviation are those of :meth:`TableSchema.fit` on one column in memory at a time;
3. encode every chunk with the fitted :class:`TableSchema` into ``num.f32`` / ``cat.i64`` in the cache.

Memory: one chunk (``CHUNK_ROWS`` rows), one numeric column of the train split while its statistics are
computed (8 bytes a row), the categorical vocabularies (a numeric-looking column keeps none), and the
per-row labels and split indices every source holds. :class:`LazyTableSource`
then reads the rows a batch asks for with one ``pread`` per row and file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from omnissl import streaming
from omnissl.errors import DataError
from omnissl_tabular.datasets import MAX_CLASSES, TableSource, _split
from omnissl_tabular.reader import is_hf_dataset, iter_table, load_hf, parse_numeric
from omnissl_tabular.schema import CategoricalColumn, TableSchema

CHUNK_ROWS = 16384  # rows per chunk: its object frame (about BYTES_PER_CELL a cell) and copies are the passes' fixed memory
BYTES_PER_CELL = 60  # a pandas object cell in memory: a Python object and its pointer (what read_table builds)
VOCAB_CAP = 100_000  # distinct target values kept while the target looks numeric (a regression target's would grow)


def _files(cfg) -> list[str]:
    return [cfg.path] + ([cfg.test_path] if cfg.test_path else [])


def _is_parquet(path: str) -> bool:
    return Path(path).suffix.lower() in (".parquet", ".pq")


def estimated_bytes(cfg) -> float:
    """The in-memory path's object frame: ``rows x columns x BYTES_PER_CELL`` (Parquet and HF datasets
    metadata), or 10x a CSV's size."""
    total = 0.0
    for path in _files(cfg):
        if is_hf_dataset(Path(path)):
            ds = load_hf(Path(path))
            total += ds.num_rows * len(ds.column_names) * BYTES_PER_CELL
            continue
        if not Path(path).is_file():
            raise DataError(f"table file {path} does not exist; check the data.path / data.test_path of the run config")
        if _is_parquet(path):
            import pyarrow.parquet as pq

            meta = pq.ParquetFile(path).metadata
            total += meta.num_rows * meta.num_columns * BYTES_PER_CELL
        else:
            total += Path(path).stat().st_size * 10
    return total


def _count(cfg, path: str) -> int:
    if is_hf_dataset(Path(path)):
        return load_hf(Path(path)).num_rows
    if _is_parquet(path):
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    return sum(len(frame) for frame, _ in iter_table(path, tuple(cfg.missing_values), cfg.delimiter, CHUNK_ROWS))


def _chunks(cfg):
    """``(path, frame, lines, first_row)`` over the table file(s), rows numbered across files."""
    start = 0
    for path in _files(cfg):
        for frame, lines in iter_table(path, tuple(cfg.missing_values), cfg.delimiter, CHUNK_ROWS):
            yield path, frame, lines, start
            start += len(frame)


def _splits(cfg, counts: list[int]) -> dict[str, np.ndarray]:
    """The splits :func:`omnissl_tabular.datasets.csv_source` draws, from the row counts alone."""
    if cfg.test_path is not None:
        train, val = _split(counts[0], (cfg.val_fraction,), cfg.seed)[::-1]
        return {"train": train, "val": val, "test": np.arange(counts[0], counts[0] + counts[1])}
    val, test, train = _split(counts[0], (cfg.val_fraction, cfg.test_fraction), cfg.seed)
    return {"train": train, "val": val, "test": test}


class _ColumnStats:
    """What one pass over a feature column's train cells needs to type it and fit it."""

    def __init__(self, folder: Path, name: str, index: int, declared_categorical: bool):
        self.name, self.present, self.parsed, self.first_bad = name, 0, 0, None
        self.declared_categorical = declared_categorical
        self.values_path = folder / f"scratch_{index}.f64"
        self.values = open(self.values_path, "wb")
        self.vocab: set[str] | None = set()

    def update(self, cells: pd.Series, lines: np.ndarray, path: str) -> None:
        present = cells.notna().to_numpy()
        numbers = pd.to_numeric(cells, errors="coerce")
        parsed = numbers.notna().to_numpy()
        self.present += int(present.sum())
        self.parsed += int(parsed[present].sum())
        if self.first_bad is None and (bad := present & ~parsed).any():
            i = int(np.flatnonzero(bad)[0])
            self.first_bad = (path, int(lines[i]), cells.iloc[i])
        self.values.write(numbers.to_numpy(dtype=np.float64).tobytes())
        if self.vocab is not None:
            if self.parsed == self.present and not self.declared_categorical:
                # numeric so far: its vocabulary would grow with the rows; should a later chunk make it
                # categorical, a pass of its own collects it
                self.vocab = None
            else:
                self.vocab.update(str(v) for v in cells[present].tolist())


class _TargetStats:
    """One pass over a target column: the decisions of ``datasets._encode_labels`` without holding the column."""

    def __init__(self):
        self.all_numeric, self.integral = True, True
        self.numbers: set[float] | None = set()
        self.texts: set[str] | None = set()

    def update(self, cells: pd.Series) -> None:
        present = cells.notna().to_numpy()
        numeric = pd.to_numeric(cells, errors="coerce")
        values = numeric.to_numpy()[present]
        if not bool(pd.notna(values).all()):
            self.all_numeric = False
        elif values.size:
            self.integral &= bool(np.allclose(values.astype(np.float64) % 1, 0))
            if self.numbers is not None:
                self.numbers.update(values.tolist())
                if len(self.numbers) > MAX_CLASSES:
                    self.numbers = None
        if self.texts is not None:
            self.texts.update(str(v).strip().rstrip(".") for v in cells[present].tolist())
            if len(self.texts) > VOCAB_CAP and self.all_numeric:
                self.texts = None

    def kind(self, declared: str, name: str) -> str:
        if declared == "auto":
            few = self.all_numeric and self.numbers is not None and self.integral
            return "classification" if (not self.all_numeric or few) else "regression"
        if declared == "regression" and not self.all_numeric:
            raise DataError(f"target {name!r} is declared regression but holds text; set data.task: classification")
        return declared


def _numeric_error(path: str, line: int, column: str, value: Any) -> DataError:
    return DataError(
        f"{path}, line {line}, column {column!r}: text {value!r} in a numerical column; fix the cell, "
        f"add the token to data.missing_values, or list the column under data.categorical"
    )


def _write_cache(folder: Path, cfg, targets: list[str]) -> dict[str, Any]:
    counts = [_count(cfg, p) for p in _files(cfg)]
    splits = _splits(cfg, counts)
    n = sum(counts)
    is_train = np.zeros(n, dtype=bool)
    is_train[splits["train"]] = True
    where = " / ".join(_files(cfg))
    # pass 2: types, vocabularies, target decisions, train values of every feature column
    columns = stats = target_stats = None
    features: list[str] = []
    for path, frame, lines, start in _chunks(cfg):
        if columns is None:
            columns = list(frame.columns)
            unknown = [c for c in [*targets, *cfg.numeric, *cfg.categorical, *cfg.drop] if c not in columns]
            if unknown:
                raise DataError(f"{where}: columns {unknown} are not in the table; its columns are {columns}")
            features = [c for c in columns if c not in targets and c not in cfg.drop]
            stats = {c: _ColumnStats(folder, c, j, c in cfg.categorical) for j, c in enumerate(features)}
            target_stats = {t: _TargetStats() for t in targets}
        elif list(frame.columns) != columns:
            raise DataError(f"{path}: columns {list(frame.columns)} differ from {cfg.path}'s {columns}")
        train = is_train[start : start + len(frame)]
        if start >= counts[0]:
            train = np.zeros(len(frame), dtype=bool)  # the test file: no train rows
        train_frame, train_lines = frame[train], lines[train]
        for c in features:
            stats[c].update(train_frame[c], train_lines, path)
        for t in targets:
            target_stats[t].update(frame[t])
    if not features:
        raise DataError(f"{where}: no feature columns left after removing targets {targets} and drop {list(cfg.drop)}")
    num_cols, cat_cols = [], []
    for c in features:
        s = stats[c]
        s.values.close()
        if c in cfg.numeric:
            kind = "numeric"
        elif c in cfg.categorical:
            kind = "categorical"
        else:
            if not s.present:
                raise DataError(f"{cfg.path}: column {c!r} has no values; drop it with data.drop")
            share = s.parsed / s.present
            if share < 1.0 and share >= 0.95:
                raise _numeric_error(*s.first_bad[:2], c, s.first_bad[2])
            kind = "numeric" if share == 1.0 else "categorical"
        (num_cols if kind == "numeric" else cat_cols).append(c)
    # the statistics of TableSchema.fit, one numeric column in memory at a time
    schema = TableSchema(targets=list(targets), scaling=cfg.scaling)
    indicators = []
    for c in num_cols:
        values = np.fromfile(stats[c].values_path, dtype=np.float64)
        fitted = TableSchema.fit(pd.DataFrame({c: values}), [c], [], targets, cfg.scaling)
        schema.numeric.extend(fitted.numeric)
        indicators.extend(fitted.categorical)
        del values
    redo = [c for c in cat_cols if stats[c].vocab is None]
    for path, frame, lines, start in (_chunks(cfg) if redo else ()):
        train = is_train[start : start + len(frame)] if start < counts[0] else np.zeros(len(frame), dtype=bool)
        for c in redo:
            stats[c].vocab = (stats[c].vocab or set()) | {str(v) for v in frame[c][train].dropna().tolist()}
    schema.categorical = [CategoricalColumn(c, sorted(stats[c].vocab)) for c in cat_cols] + indicators
    for c in features:
        stats[c].values_path.unlink()
    kinds = {t: target_stats[t].kind(cfg.task, t) for t in targets}
    classes = {}
    for t in targets:
        if kinds[t] == "classification":
            texts = target_stats[t].texts
            if texts is None:
                texts = set()
                for _, frame, _, _ in _chunks(cfg):
                    texts |= {str(v).strip().rstrip(".") for v in frame[t].dropna().tolist()}
            if target_stats[t].all_numeric:
                texts = {str(float(x)) for x in texts}
            classes[t] = sorted(texts)
    # pass 3: encode every row
    labels = {t: np.empty(n, dtype=np.int64 if kinds[t] == "classification" else np.float32) for t in targets}
    with open(folder / "num.f32", "wb") as num_fh, open(folder / "cat.i64", "wb") as cat_fh:
        for path, frame, lines, start in _chunks(cfg):
            typed = frame.copy()
            for c in num_cols:
                typed[c] = parse_numeric(frame, c, path, lines)
            num, cat = schema.transform(typed)
            num_fh.write(num.numpy().tobytes())
            cat_fh.write(cat.numpy().tobytes())
            for t in targets:
                labels[t][start : start + len(frame)] = _encode_chunk(frame[t], kinds[t], classes.get(t), target_stats[t].all_numeric)
    for t, values in labels.items():
        np.save(folder / f"label_{targets.index(t)}.npy", values)
    for k, v in splits.items():
        np.save(folder / f"split_{k}.npy", v)
    return {"rows": n, "schema": schema.to_json(), "targets": targets, "kinds": kinds, "splits": list(splits), "where": where}


def _encode_chunk(cells: pd.Series, kind: str, classes: list[str] | None, all_numeric: bool) -> np.ndarray:
    if kind == "regression":
        return pd.to_numeric(cells, errors="coerce").to_numpy(dtype=np.float32)
    lookup = {c: i for i, c in enumerate(classes)}
    text = [None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).strip().rstrip(".") for v in cells.tolist()]
    if all_numeric:
        text = [None if x is None else str(float(x)) for x in text]
    return np.asarray([lookup[x] if x is not None else -1 for x in text], dtype=np.int64)


class LazyTableSource(TableSource):
    """A :class:`TableSource` whose encoded rows stay in the cache; ``rows(idx)`` reads them (in the loader's workers)."""

    def __init__(self, folder: Path, meta: dict[str, Any], pretrain_on: str, decision: str):
        self.folder, self.decision = folder, decision
        self.schema = TableSchema.from_json(meta["schema"])
        self._num = streaming.FixedRows(folder / "num.f32", "float32", (len(self.schema.numeric),))
        self._cat = streaming.FixedRows(folder / "cat.i64", "int64", (len(self.schema.categorical),))
        self._rows = int(meta["rows"])
        targets = meta["targets"]
        self.labels = {t: torch.from_numpy(np.load(folder / f"label_{i}.npy")) for i, t in enumerate(targets)}
        self.label_kinds = dict(meta["kinds"])
        self.splits = {k: torch.from_numpy(np.load(folder / f"split_{k}.npy")) for k in meta["splits"]}
        self.pretrain_index = self.splits["train"] if pretrain_on == "train" else torch.arange(self._rows)

    @property
    def num_rows(self) -> int:
        return self._rows

    def batch(self, indices: Tensor) -> dict[str, Tensor]:
        return self.rows(self.pretrain_index[indices.cpu()])

    def rows(self, rows: Tensor) -> dict[str, Tensor]:
        """Batch of absolute row indices, read from the cache on the CPU (the engine moves it)."""
        idx = rows.cpu().tolist()
        return {"num": torch.from_numpy(self._num.read(idx)), "cat": torch.from_numpy(self._cat.read(idx))}

    gather = rows

    def to(self, device: torch.device) -> LazyTableSource:
        self.labels = {k: v.to(device) for k, v in self.labels.items()}
        self.splits = {k: v.to(device) for k, v in self.splits.items()}
        return self

    def surface_features(self) -> Tensor:
        """Scaled numericals and one-hot categoricals of every row ``(N, D)``, read in chunks (probes need them all)."""
        parts = []
        for start in range(0, self._rows, CHUNK_ROWS):
            batch = self.rows(torch.arange(start, min(start + CHUNK_ROWS, self._rows)))
            onehot = [torch.nn.functional.one_hot(batch["cat"][:, j], c).float() for j, c in enumerate(self.schema.cardinalities)]
            parts.append(torch.cat([batch["num"], *onehot], dim=1))
        return torch.cat(parts)

    def describe(self) -> str:
        return f"{super().describe()}; rows streamed from the cache {self.folder}; {self.decision}"


def build_lazy(cfg, targets: list[str], decision: str) -> LazyTableSource:
    """The lazy counterpart of ``datasets.csv_source`` (same splits, schema, encoding and labels)."""
    # a HF datasets folder is keyed by every file in it (its Arrow shards and state.json)
    files = [f for p in map(Path, _files(cfg)) for f in (sorted(x for x in p.rglob("*") if x.is_file()) if p.is_dir() else [p])]
    settings = cfg.model_dump(exclude={"in_memory", "memory_budget_gb", "cache_dir", "pretrain_on", "path", "test_path"})
    folder, meta, built = streaming.open_or_build("tabular", streaming.file_fingerprint(files), settings,
                                                  lambda tmp: _write_cache(tmp, cfg, targets), cfg.cache_dir)
    return LazyTableSource(folder, meta, cfg.pretrain_on, f"{decision}; cache {'built now' if built else 'reused'}")
