"""Tabular data sources: CSV/Parquet files (``tabular.csv``) and scikit-learn's bundled tables (``tabular.sklearn``).

A :class:`TableSource` holds the encoded table as two tensors (numerical and categorical features) that
live on the device once moved, so ``batch(idx)`` is a gather. Targets are kept in ``labels`` for probes
and never appear in a batch. By default only the train split is used for pretraining
(``pretrain_on: train``): ``len(source)`` and ``batch(i)`` address train rows, while probes address any
row with :meth:`TableSource.rows` and the absolute indices in ``splits``.

Batch:
    ``{"num": (B, F_num) float32, "cat": (B, F_cat) int64}``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from omnissl.device import move_to_device
from omnissl.errors import ConfigError, DataError
from omnissl.specs import BuildContext, ComponentConfig
from omnissl.streaming import StreamingFields, choose_in_memory
from omnissl_tabular.reader import DEFAULT_MISSING, infer_kind, parse_numeric, read_table
from omnissl_tabular.schema import TableSchema

MAX_CLASSES = 20  # an integer target with at most this many distinct values is treated as classes


class TableSource:
    """An encoded table on one device (see the module docstring).

    Attributes:
        num, cat: all rows, ``(N, F_num)`` float32 and ``(N, F_cat)`` int64.
        labels: ``{target: (N,)}``; int64 class ids (``-1`` when missing) or float32 values (NaN when missing).
        label_kinds: ``{target: "classification" | "regression"}``.
        splits: absolute row indices ``train`` / ``val`` / ``test``.
        schema: the fitted :class:`TableSchema` (JSON-serialisable, fitted on the train split only).
        pretrain_index: rows that pretraining draws from (the train split, or every row).
    """

    def __init__(self, num: Tensor, cat: Tensor, labels: dict[str, Tensor], label_kinds: dict[str, str], splits: dict[str, Tensor], schema: TableSchema, pretrain_on: str = "train"):
        self.num, self.cat = num, cat
        self.labels, self.label_kinds, self.splits, self.schema = labels, label_kinds, splits, schema
        self.pretrain_index = splits["train"] if pretrain_on == "train" else torch.arange(num.shape[0])

    def __len__(self) -> int:
        return int(self.pretrain_index.shape[0])

    def batch(self, indices: Tensor) -> dict[str, Tensor]:
        """Pretraining batch for positions ``indices`` in ``[0, len(self))``."""
        return self.rows(self.pretrain_index[indices])

    def rows(self, rows: Tensor) -> dict[str, Tensor]:
        """Batch of absolute row indices (those in ``splits``)."""
        return {"num": self.num[rows], "cat": self.cat[rows]}

    gather = rows  # the name core evaluators use for label-aligned batches (omnissl.interfaces.DataSource)

    def to(self, device: torch.device) -> TableSource:
        self.num, self.cat, self.pretrain_index = self.num.to(device), self.cat.to(device), self.pretrain_index.to(device)
        self.labels, self.splits = move_to_device(self.labels, device), move_to_device(self.splits, device)
        return self

    def surface_features(self) -> Tensor:
        """Raw-feature baseline: scaled numericals and one-hot categoricals, ``(N, F_num + sum(cardinalities))``."""
        parts = [self.num] + [F.one_hot(self.cat[:, j], c).float() for j, c in enumerate(self.schema.cardinalities)]
        return torch.cat(parts, dim=1)

    @property
    def num_rows(self) -> int:
        return int(self.num.shape[0])

    def describe(self) -> str:
        """One line for the start of a run: rows per split, numeric and categorical columns, each target's kind."""
        def columns(cols) -> str:
            names = [c.name for c in cols]
            return ", ".join(names[:8]) + (f", ... ({len(names) - 8} more)" if len(names) > 8 else "")

        splits = " / ".join(f"{k} {int(v.shape[0]):,}" for k, v in self.splits.items())
        targets = "; ".join(
            f"target {t!r}: " + (f"classification, {int(self.labels[t].max()) + 1} classes" if kind == "classification" else "regression")
            for t, kind in self.label_kinds.items()
        ) or "no target"
        return (f"{self.num_rows:,} rows ({splits}), pretraining on {len(self):,}; {len(self.schema.numeric)} numeric columns "
                f"({columns(self.schema.numeric) or 'none'}), {len(self.schema.categorical)} categorical "
                f"({columns(self.schema.categorical) or 'none'}); {targets}")


# ------------------------------------------------------------------------------------------ building
def _split(n: int, fractions: tuple[float, ...], seed: int) -> list[np.ndarray]:
    """Random disjoint index sets of the given fractions of ``range(n)``; the rest is the last set."""
    perm = np.random.default_rng(seed).permutation(n)
    out, start = [], 0
    for fraction in fractions:
        size = int(round(fraction * n))
        out.append(np.sort(perm[start : start + size]))
        start += size
    out.append(np.sort(perm[start:]))
    return out


def _encode_labels(values: pd.Series, kind: str, name: str) -> tuple[Tensor, str]:
    """Class ids (sorted class names of every row) or floats; missing becomes ``-1`` / NaN."""
    present = values.notna().to_numpy()
    numeric = pd.to_numeric(values, errors="coerce")
    all_numeric = bool(numeric.notna().to_numpy()[present].all())
    if kind == "auto":
        few = all_numeric and numeric[present].nunique() <= MAX_CLASSES and np.allclose(numeric[present] % 1, 0)
        kind = "classification" if (not all_numeric or few) else "regression"
    if kind == "regression":
        if not all_numeric:
            raise DataError(f"target {name!r} is declared regression but holds text; set data.task: classification")
        return torch.tensor(numeric.to_numpy(dtype=np.float32)), kind
    # Adult's test file writes '>50K.' where the train file writes '>50K': strip a trailing period
    text = [None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).strip().rstrip(".") for v in values.tolist()]
    if all_numeric:
        text = [None if t is None else str(float(t)) for t in text]
    classes = sorted({t for t in text if t is not None})
    lookup = {c: i for i, c in enumerate(classes)}
    return torch.tensor([lookup[t] if t is not None else -1 for t in text], dtype=torch.long), kind


def build_source(
    frame: pd.DataFrame,
    lines: np.ndarray,
    path: str,
    targets: list[str],
    splits: dict[str, np.ndarray],
    numeric: list[str] | None = None,
    categorical: list[str] | None = None,
    drop: list[str] = (),
    scaling: str = "standard",
    task: str = "auto",
    pretrain_on: str = "train",
) -> TableSource:
    """Type the columns of ``frame``, fit the schema on ``splits["train"]`` and encode every row."""
    columns = list(frame.columns)
    unknown = [c for c in [*targets, *(numeric or []), *(categorical or []), *drop] if c not in columns]
    if unknown:
        raise DataError(f"{path}: columns {unknown} are not in the table; its columns are {columns}")
    features = [c for c in columns if c not in targets and c not in drop]
    declared_num, declared_cat = set(numeric or []), set(categorical or [])
    num_cols, cat_cols = [], []
    for col in features:
        # types are inferred from the train rows only, like every other fitted statistic
        train_rows = frame.iloc[splits["train"]]
        kind = "numeric" if col in declared_num else "categorical" if col in declared_cat else infer_kind(train_rows, col, path, lines[splits["train"]])
        (num_cols if kind == "numeric" else cat_cols).append(col)
    typed = frame.copy()
    for col in num_cols:
        typed[col] = parse_numeric(frame, col, path, lines)
    if not num_cols and not cat_cols:
        raise DataError(f"{path}: no feature columns left after removing targets {targets} and drop {list(drop)}")
    schema = TableSchema.fit(typed.iloc[splits["train"]], num_cols, cat_cols, targets, scaling)
    num, cat = schema.transform(typed)
    labels, kinds = {}, {}
    for t in targets:
        labels[t], kinds[t] = _encode_labels(frame[t], task, t)
    split_tensors = {k: torch.as_tensor(v, dtype=torch.long) for k, v in splits.items()}
    return TableSource(num, cat, labels, kinds, split_tensors, schema, pretrain_on)


class CSVTableConfig(StreamingFields):
    """``tabular.csv``: a CSV or Parquet table with a header row (and ``in_memory``, ``memory_budget_gb``,
    ``cache_dir``: a table that does not fit is read in chunks into a row cache, :mod:`omnissl_tabular.stream`).

    Attributes:
        path: the table (train split, and val/test when ``test_path`` is not given).
        test_path: optional separate file forming the test split (Adult's ``adult.test``). Default ``None``.
        target: target column name(s), kept out of the features and stored as ``labels``.
        numeric / categorical: override the inferred type of these columns. Default ``[]``.
        drop: columns to ignore. Default ``[]``.
        missing_values: cell texts that mean "missing" (after stripping spaces). Default ``"", "?", "NA", ...``.
        delimiter: CSV field separator. Default ``","``.
        val_fraction: share of the training file carved out as validation, with ``seed``. Default 0.1.
        test_fraction: share carved out as test when ``test_path`` is not given. Default 0.2.
        scaling: numerical scaling fitted on the train split: ``standard`` | ``minmax`` | ``none``. Default ``standard``.
        task: ``auto`` | ``classification`` | ``regression`` for the target. Default ``auto``.
        pretrain_on: rows pretraining may see: ``train`` (default) or ``all`` (transductive).
        seed: split seed. Default 0.
    """

    path: str = ""
    test_path: str | None = None
    target: str | list[str] = ""
    numeric: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)
    drop: list[str] = Field(default_factory=list)
    missing_values: list[str] = Field(default_factory=lambda: list(DEFAULT_MISSING))
    delimiter: str = ","
    val_fraction: float = Field(0.1, ge=0, lt=1)
    test_fraction: float = Field(0.2, ge=0, lt=1)
    scaling: Literal["standard", "minmax", "none"] = "standard"
    task: Literal["auto", "classification", "regression"] = "auto"
    pretrain_on: Literal["train", "all"] = "train"
    seed: int = 0


def csv_source(cfg: CSVTableConfig, ctx: BuildContext | None = None) -> TableSource:
    """Read ``cfg.path`` (and ``cfg.test_path``) and build a :class:`TableSource`."""
    targets = [cfg.target] if isinstance(cfg.target, str) else list(cfg.target)
    missing = [key for key, value in (("path", cfg.path), ("target", targets and all(targets))) if not value]
    if missing:
        raise ConfigError([f"data.{key}: required for tabular.csv (the table file and its target column)" for key in missing])
    if cfg.in_memory is not True:
        from omnissl_tabular import stream

        in_memory, decision = choose_in_memory(cfg.in_memory, stream.estimated_bytes(cfg), cfg.memory_budget_gb)
        if not in_memory:
            return stream.build_lazy(cfg, targets, decision)
    frame, lines = read_table(cfg.path, tuple(cfg.missing_values), cfg.delimiter)
    if cfg.test_path is not None:
        test, test_lines = read_table(cfg.test_path, tuple(cfg.missing_values), cfg.delimiter)
        if list(test.columns) != list(frame.columns):
            raise DataError(f"{cfg.test_path}: columns {list(test.columns)} differ from {cfg.path}'s {list(frame.columns)}")
        train, val = _split(len(frame), (cfg.val_fraction,), cfg.seed)[::-1]
        n_train = len(frame)
        splits = {"train": train, "val": val, "test": np.arange(n_train, n_train + len(test))}
        frame = pd.concat([frame, test], ignore_index=True)
        lines = np.concatenate([lines, test_lines])
        path = f"{cfg.path} / {cfg.test_path}"
        # errors in test rows must name the test file: check its numeric cells against the train types first
        _check_test_file(frame.iloc[:n_train], test, test_lines, cfg, targets)
    else:
        val, test, train = _split(len(frame), (cfg.val_fraction, cfg.test_fraction), cfg.seed)
        splits = {"train": train, "val": val, "test": test}
        path = cfg.path
    return build_source(frame, lines, path, targets, splits, cfg.numeric, cfg.categorical, cfg.drop, cfg.scaling, cfg.task, cfg.pretrain_on)


def _check_test_file(train: pd.DataFrame, test: pd.DataFrame, test_lines: np.ndarray, cfg: CSVTableConfig, targets: list[str]) -> None:
    for col in train.columns:
        if col in targets or col in cfg.drop or col in cfg.categorical:
            continue
        if col in cfg.numeric or infer_kind(train, col, cfg.path, np.arange(2, len(train) + 2)) == "numeric":
            parse_numeric(test, col, cfg.test_path, test_lines)


class SklearnTableConfig(ComponentConfig):
    """``tabular.sklearn``: a table shipped inside scikit-learn (no download).

    Attributes:
        table: ``breast_cancer`` (569 x 30, 2 classes), ``wine`` (178 x 13, 3 classes) or
            ``digits`` (1797 x 64, 10 classes). Default ``breast_cancer``.
        val_fraction / test_fraction: random split shares with ``seed``. Defaults 0.2 / 0.2.
        scaling: see ``tabular.csv``. Default ``standard``.
        seed: split seed. Default 0.
    """

    table: Literal["breast_cancer", "wine", "digits"] = "breast_cancer"
    val_fraction: float = Field(0.2, ge=0, lt=1)
    test_fraction: float = Field(0.2, ge=0, lt=1)
    scaling: Literal["standard", "minmax", "none"] = "standard"
    seed: int = 0


def sklearn_source(cfg: SklearnTableConfig, ctx: BuildContext | None = None) -> TableSource:
    """Load one of scikit-learn's bundled tables; the target column is ``target``."""
    from sklearn import datasets as skd

    loader = {"breast_cancer": skd.load_breast_cancer, "wine": skd.load_wine, "digits": skd.load_digits}[cfg.table]
    bunch = loader(as_frame=True)
    frame = bunch.frame.astype(object)
    frame.columns = [str(c) for c in frame.columns]
    val, test, train = _split(len(frame), (cfg.val_fraction, cfg.test_fraction), cfg.seed)
    src = f"sklearn:{cfg.table}"
    lines = np.arange(2, len(frame) + 2)
    numeric = [c for c in frame.columns if c != "target"]
    return build_source(frame, lines, src, ["target"], {"train": train, "val": val, "test": test}, numeric=numeric, scaling=cfg.scaling, task="classification")


def example_source(rows: int = 48, seed: int = 0) -> TableSource:
    """A tiny mixed-type table with a missing cell, for contract tests: 3 numerical + 2 categorical features."""
    g = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "a": g.normal(size=rows), "b": g.uniform(size=rows), "c": g.integers(0, 50, size=rows).astype(float),
            "colour": g.choice(["red", "green", "blue"], size=rows), "size": g.choice(["S", "M", "L", "XL"], size=rows),
            "y": g.integers(0, 2, size=rows),
        }
    ).astype(object)
    frame.loc[3, "a"] = None
    frame.loc[5, "colour"] = None
    val, test, train = _split(rows, (0.25, 0.25), seed)
    return build_source(frame, np.arange(2, rows + 2), "example", ["y"], {"train": train, "val": val, "test": test}, task="classification")
