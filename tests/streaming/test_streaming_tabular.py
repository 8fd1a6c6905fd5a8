"""The lazy tabular path: CSV and Parquet read in chunks give the in-memory source's schema, labels, splits and batches."""

import numpy as np
import pandas as pd
import pytest
import torch

from omnissl.errors import DataError
from omnissl_tabular import datasets, stream
from omnissl_tabular.stream import LazyTableSource


def _table(rows: int, seed: int = 0) -> pd.DataFrame:
    g = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "a": g.normal(size=rows).round(4), "b": g.integers(0, 9, size=rows).astype(float),
        "colour": g.choice(["red", "green", "blue", "teal"], size=rows), "code": g.choice(["x1", "x2", "3"], size=rows),
        "y": g.choice([" <=50K", " >50K"], size=rows), "price": g.normal(10, 3, size=rows).round(2),
    }).astype(object)
    # numbers in the first rows, words after: categorical, found only after the first chunks dropped its vocabulary
    frame["late"] = [str(i % 5) for i in range(rows // 2)] + [f"w{i % 4}" for i in range(rows - rows // 2)]
    frame.loc[g.choice(rows, 7, replace=False), "a"] = None  # a numeric column with missing cells: median + indicator
    frame.loc[g.choice(rows, 5, replace=False), "colour"] = None
    return frame


def _same(memory, lazy):
    assert isinstance(lazy, LazyTableSource) and not isinstance(memory, LazyTableSource)
    assert lazy.schema.to_json() == memory.schema.to_json()
    assert lazy.num_rows == memory.num_rows and len(lazy) == len(memory)
    assert lazy.label_kinds == memory.label_kinds
    for k in memory.labels:
        torch.testing.assert_close(lazy.labels[k], memory.labels[k], rtol=0, atol=0, equal_nan=True)
    for k in memory.splits:
        assert torch.equal(lazy.splits[k], memory.splits[k]), k
    perm = torch.randperm(len(memory), generator=torch.Generator().manual_seed(0))
    for chunk in perm.split(33):
        a, b = memory.batch(chunk), lazy.batch(chunk)
        assert torch.equal(a["num"], b["num"]) and torch.equal(a["cat"], b["cat"])
    assert torch.equal(lazy.surface_features(), memory.surface_features())


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_chunked_table_equals_in_memory(tmp_path, monkeypatch, fmt):
    monkeypatch.setattr(stream, "CHUNK_ROWS", 97)  # many chunks, the last one short
    frame = _table(1000)
    path = tmp_path / f"t.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False, na_rep="?")
    else:
        frame.to_parquet(path)
    kw = {"path": str(path), "target": ["y", "price"], "val_fraction": 0.15, "test_fraction": 0.2}
    memory = datasets.csv_source(datasets.CSVTableConfig(**kw, in_memory=True))
    lazy = datasets.csv_source(datasets.CSVTableConfig(**kw, in_memory=False))
    _same(memory, lazy)
    assert lazy.label_kinds == {"y": "classification", "price": "regression"}
    assert "rows streamed from the cache" in lazy.describe()


def test_separate_test_file_and_minmax(tmp_path, monkeypatch):
    monkeypatch.setattr(stream, "CHUNK_ROWS", 64)
    _table(300, seed=1).to_csv(tmp_path / "train.csv", index=False)
    test = _table(120, seed=2)
    test["y"] = test["y"] + "."  # Adult's test file writes '>50K.'
    test.to_csv(tmp_path / "test.csv", index=False)
    kw = {"path": str(tmp_path / "train.csv"), "test_path": str(tmp_path / "test.csv"), "target": "y", "scaling": "minmax", "categorical": ["b"]}
    _same(datasets.csv_source(datasets.CSVTableConfig(**kw, in_memory=True)), datasets.csv_source(datasets.CSVTableConfig(**kw, in_memory=False)))


def test_auto_streams_beyond_the_budget_and_bad_cells_name_the_line(tmp_path):
    frame = _table(200)
    frame.loc[150, "price"] = "12,5"  # a stray decimal comma in a numeric column
    frame.to_csv(tmp_path / "t.csv", index=False)
    cfg = {"path": str(tmp_path / "t.csv"), "target": "y"}
    assert not isinstance(datasets.csv_source(datasets.CSVTableConfig(**cfg, drop=["price"])), LazyTableSource)
    with pytest.raises(DataError, match=r"t.csv, line 152, column 'price': text '12,5' in a numerical column"):
        datasets.csv_source(datasets.CSVTableConfig(**cfg, numeric=["price"], memory_budget_gb=1e-6))
    lazy = datasets.csv_source(datasets.CSVTableConfig(**cfg, drop=["price"], memory_budget_gb=1e-6))
    assert isinstance(lazy, LazyTableSource) and "exceeds data.memory_budget_gb" in lazy.describe()


def test_hf_datasets_folder_is_a_table(tmp_path, monkeypatch):
    """A local ``save_to_disk`` folder reads as the same table as its Parquet export, in memory and in chunks."""
    datasets_hf = pytest.importorskip("datasets")
    monkeypatch.setattr(stream, "CHUNK_ROWS", 50)
    frame = _table(240)
    frame["a"] = pd.to_numeric(frame["a"])  # Arrow needs typed columns; missing cells become nulls
    hf = datasets_hf.Dataset.from_pandas(frame, preserve_index=False)
    hf.save_to_disk(str(tmp_path / "hf"))
    hf.to_parquet(str(tmp_path / "t.parquet"))
    kw = {"target": "y", "val_fraction": 0.2, "test_fraction": 0.2}
    parquet = datasets.csv_source(datasets.CSVTableConfig(path=str(tmp_path / "t.parquet"), **kw, in_memory=True))
    memory = datasets.csv_source(datasets.CSVTableConfig(path=str(tmp_path / "hf"), **kw, in_memory=True))
    assert memory.schema.to_json() == parquet.schema.to_json()
    assert torch.equal(memory.num, parquet.num) and torch.equal(memory.cat, parquet.cat)
    _same(memory, datasets.csv_source(datasets.CSVTableConfig(path=str(tmp_path / "hf"), **kw, in_memory=False)))
    datasets_hf.DatasetDict({"train": hf, "test": hf}).save_to_disk(str(tmp_path / "dict"))
    with pytest.raises(DataError, match="holds several splits"):
        datasets.csv_source(datasets.CSVTableConfig(path=str(tmp_path / "dict"), **kw))


def test_hf_folder_with_audio_and_image_columns_reads_without_torchcodec(tmp_path):
    """``load_hf`` casts Audio and Image columns to ``decode=False``: a row gives the stored bytes, where
    ``datasets`` would decode them (audio through torchcodec, which is not installed)."""
    datasets_hf = pytest.importorskip("datasets")
    from omnissl_tabular.reader import load_hf

    features = datasets_hf.Features({"clip": {"bytes": datasets_hf.Value("binary"), "path": datasets_hf.Value("string")},
                                     "picture": {"bytes": datasets_hf.Value("binary"), "path": datasets_hf.Value("string")},
                                     "x": datasets_hf.Value("float64")})
    rows = {"clip": [{"bytes": b"RIFF-1", "path": "a.wav"}], "picture": [{"bytes": b"PNG-1", "path": "a.png"}], "x": [1.5]}
    hf = datasets_hf.Dataset.from_dict(rows, features=features)
    hf = hf.cast_column("clip", datasets_hf.Audio(decode=False)).cast_column("clip", datasets_hf.Audio())
    hf = hf.cast_column("picture", datasets_hf.Image(decode=False)).cast_column("picture", datasets_hf.Image())
    hf.save_to_disk(str(tmp_path / "hf"))
    row = load_hf(tmp_path / "hf")[0]
    assert row == {"clip": {"bytes": b"RIFF-1", "path": "a.wav"}, "picture": {"bytes": b"PNG-1", "path": "a.png"}, "x": 1.5}


def test_hf_folder_media_columns_are_left_out_of_the_table_with_a_warning(tmp_path):
    """An Audio column read as a table column would make every stored clip its own category; it is left out,
    named in one warning, and the scalar columns read as before."""
    datasets_hf = pytest.importorskip("datasets")
    n = 60
    rows = {"clip": [{"bytes": f"RIFF-{i}".encode(), "path": f"{i}.wav"} for i in range(n)],
            "x": [float(i % 7) for i in range(n)], "y": [str(i % 2) for i in range(n)]}
    features = datasets_hf.Features({"clip": {"bytes": datasets_hf.Value("binary"), "path": datasets_hf.Value("string")},
                                     "x": datasets_hf.Value("float64"), "y": datasets_hf.Value("string")})
    hf = datasets_hf.Dataset.from_dict(rows, features=features).cast_column("clip", datasets_hf.Audio(decode=False))
    hf.save_to_disk(str(tmp_path / "hf"))
    with pytest.warns(UserWarning, match=r"columns 'clip' \(Audio\) are not scalar table cells"):
        source = datasets.csv_source(datasets.CSVTableConfig(path=str(tmp_path / "hf"), target="y", val_fraction=0.2,
                                                             test_fraction=0.2, in_memory=True))
    assert "clip" not in source.schema.to_json() and "x" in source.schema.to_json()
