"""Reading CSV and Parquet tables into typed frames, with errors that name the file, line and column.

CSV is read with the standard library's ``csv`` module (not ``pandas.read_csv``) because pandas silently
pads short rows with NaN and reports ragged rows without the column; here every row is checked against
the header. Parquet goes through ``pandas.read_parquet`` (pyarrow), or by record batches when read in
chunks (:func:`iter_table`, the lazy path of :mod:`omnissl_tabular.stream`). Cells equal to one of
``missing_values`` (after stripping spaces) become ``None``.
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from omnissl.errors import DataError

DEFAULT_MISSING = ("", "?", "NA", "N/A", "NaN", "nan", "null", "None")


def read_table(path: str | Path, missing_values: tuple[str, ...] = DEFAULT_MISSING, delimiter: str = ",") -> tuple[pd.DataFrame, np.ndarray]:
    """Read ``path`` (``.csv``/``.txt``/``.data``/``.test`` or ``.parquet``/``.pq``) into an object-dtype frame.

    Returns the frame and, per row, the line number in the file (1-based, the header is line 1) or, for
    Parquet, the row number (1-based), so later errors can point at the cell.
    """
    ((frame, lines),) = iter_table(path, missing_values, delimiter, chunk_rows=None)
    return frame, lines


def iter_table(path: str | Path, missing_values: tuple[str, ...] = DEFAULT_MISSING, delimiter: str = ",", chunk_rows: int | None = 65536):
    """:func:`read_table` in chunks of ``chunk_rows`` rows (``None``: one chunk): yields ``(frame, lines)`` per chunk.

    Parquet is read by record batches through ``pyarrow.parquet.ParquetFile.iter_batches`` (only what a
    chunk needs is in memory); CSV rows are checked against the header exactly as :func:`read_table` does.
    """
    path = Path(path)
    if is_hf_dataset(path):
        yield from _iter_hf(path, set(missing_values), chunk_rows)
        return
    if not path.is_file():
        raise DataError(f"table file {path} does not exist; check the data.path / data.test_path of the run config")
    missing = set(missing_values)

    def typed(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.astype(object)
        frame = frame.where(frame.notna(), None)
        for col in frame.columns:
            frame[col] = [None if (isinstance(v, str) and v.strip() in missing) else v for v in frame[col].tolist()]
        return frame

    if path.suffix.lower() in (".parquet", ".pq"):
        if chunk_rows is None:
            frame = typed(pd.read_parquet(path))
            yield frame, np.arange(1, len(frame) + 1)
            return
        import pyarrow.parquet as pq

        start = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
            frame = typed(batch.to_pandas())
            yield frame, np.arange(start + 1, start + len(frame) + 1)
            start += len(frame)
        return
    rows, lines = [], []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter=delimiter, skipinitialspace=True)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise DataError(f"{path}: the file is empty; a CSV table needs a header row") from None
        if len(set(header)) != len(header):
            dupes = sorted({h for h in header if header.count(h) > 1})
            raise DataError(f"{path}, line 1: duplicate column names {dupes} in the header; rename them")
        for fields in reader:
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue  # blank line
            if len(fields) != len(header):
                where = header[len(fields)] if len(fields) < len(header) else f"#{len(header) + 1} (beyond the header)"
                raise DataError(
                    f"{path}, line {reader.line_num}, column {where}: ragged row with {len(fields)} fields, the header has "
                    f"{len(header)}; fix the row (quote fields that contain '{delimiter}') or remove it"
                )
            rows.append([None if f.strip() in missing else f.strip() for f in fields])
            lines.append(reader.line_num)
            if chunk_rows is not None and len(rows) == chunk_rows:
                yield pd.DataFrame(rows, columns=header, dtype=object), np.asarray(lines)
                rows, lines = [], []
    if rows or chunk_rows is None:
        yield pd.DataFrame(rows, columns=header, dtype=object), np.asarray(lines)


def is_hf_dataset(path: Path) -> bool:
    """A folder written by HF ``datasets``' ``save_to_disk`` (one split: ``state.json``; several: ``dataset_dict.json``)."""
    return path.is_dir() and ((path / "state.json").is_file() or (path / "dataset_dict.json").is_file())


def load_hf(path: Path):
    """``datasets.load_from_disk(path)`` (memory-mapped Arrow, nothing downloaded); a folder of several splits is refused.

    ``Audio`` and ``Image`` columns are cast to ``decode=False``: a row then holds the stored ``{"bytes", "path"}``
    instead of a decoded clip or picture, whose decoding in ``datasets`` needs torchcodec (not a dependency).
    """
    try:
        from datasets import Audio, Dataset, Image, load_from_disk
    except ImportError as err:
        raise DataError(f"{path} is a HF datasets folder; reading it needs the 'datasets' package: pip install 'omnissl-tabular[hf]'") from err
    ds = load_from_disk(str(path))
    if not isinstance(ds, Dataset):
        raise DataError(f"{path} holds several splits {sorted(ds)}; point data.path at one of them ({path}/<split>) and data.test_path at another")
    for name, feature in ds.features.items():
        if isinstance(feature, (Audio, Image)) and feature.decode:
            ds = ds.cast_column(name, type(feature)(decode=False))
    return ds


def _iter_hf(path: Path, missing: set[str], chunk_rows: int | None):
    """Rows of a saved HF dataset as object frames, ``chunk_rows`` at a time (Arrow record batches, memory-mapped).

    Only scalar columns (``Value``, ``ClassLabel``) are table cells. Audio, image and nested columns are left
    out with one warning that names them: as categories every stored clip would be its own value.
    """
    from datasets import ClassLabel, Value

    ds = load_hf(path)
    other = [name for name, feature in ds.features.items() if not isinstance(feature, (Value, ClassLabel))]
    if other:
        kinds = ", ".join(f"{name!r} ({type(ds.features[name]).__name__})" for name in other)
        warnings.warn(f"{path}: columns {kinds} are not scalar table cells and are left out; read audio with the speech "
                      f"plugin's speech.hf_dataset", stacklevel=2)
        ds = ds.remove_columns(other)
        if not ds.column_names:
            raise DataError(f"{path}: the HF dataset has no scalar columns to read as a table")
    size = chunk_rows or max(1, ds.num_rows)
    start = 0
    for batch in ds.with_format("arrow").iter(batch_size=size):
        frame = batch.to_pandas().astype(object)
        frame = frame.where(frame.notna(), None)
        for col in frame.columns:
            frame[col] = [None if (isinstance(v, str) and v.strip() in missing) else v for v in frame[col].tolist()]
        yield frame, np.arange(start + 1, start + len(frame) + 1)
        start += len(frame)
    if start == 0:
        raise DataError(f"{path}: the HF dataset has no rows")


def parse_numeric(frame: pd.DataFrame, column: str, path: str | Path, lines: np.ndarray) -> pd.Series:
    """``frame[column]`` as float64 with NaN for missing cells; text raises a :class:`DataError` naming the cell."""
    raw = frame[column]
    values = pd.to_numeric(raw, errors="coerce")
    bad = values.isna().to_numpy() & raw.notna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{path}, line {int(lines[i])}, column {column!r}: text {raw.iloc[i]!r} in a numerical column; fix the cell, "
            f"add the token to data.missing_values, or list the column under data.categorical"
        )
    return values.astype(np.float64)


def infer_kind(frame: pd.DataFrame, column: str, path: str | Path, lines: np.ndarray) -> str:
    """``"numeric"`` if every present cell parses as a number, else ``"categorical"``.

    A column where at least 95% of the cells are numbers but some are not is almost always a data error
    (a stray unit or typo), so it raises instead of silently becoming categorical.
    """
    raw = frame[column]
    present = raw.notna().to_numpy()
    if not present.any():
        raise DataError(f"{path}: column {column!r} has no values; drop it with data.drop")
    parsed = pd.to_numeric(raw, errors="coerce").notna().to_numpy()
    share = parsed[present].mean()
    if share == 1.0:
        return "numeric"
    if share >= 0.95:
        parse_numeric(frame, column, path, lines)  # raises with the first offending cell
    return "categorical"
