"""Series sources: a CSV with one series per row, and generated labelled sine waves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from pydantic import Field

from omnissl.data import TensorSource
from omnissl.errors import DataError
from omnissl.specs import BuildContext, ComponentConfig


class SeriesSource(TensorSource):
    """``(N, T)`` float series with optional integer labels; the raw series are the surface-feature baseline."""

    def surface_features(self) -> torch.Tensor:
        return self.data

    def describe(self) -> str:
        labels = ", ".join(f"{k}: {int(v.max()) + 1} classes" for k, v in self.labels.items()) or "no labels"
        return f"{self.data.shape[0]:,} series of length {self.data.shape[1]}; {labels}"


class CSVSeriesConfig(ComponentConfig):
    """``path`` of a CSV with a header and one series per row; ``label_col`` ("label"; None: unlabelled)."""

    path: str = ""
    label_col: str | None = "label"


def csv_series(cfg: CSVSeriesConfig, ctx: BuildContext | None = None) -> SeriesSource:
    path = Path(cfg.path)
    if not path.is_file():
        raise DataError(f"timeseries.csv: {path} does not exist; set data.path to your CSV (one series per row)")
    header = path.read_text().splitlines()[0].split(",")
    try:
        table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    except ValueError as exc:
        raise DataError(f"timeseries.csv: {path}: every value must be a number ({exc})") from exc
    labels = {}
    if cfg.label_col is not None:
        if cfg.label_col not in header:
            raise DataError(f"timeseries.csv: {path} has no column {cfg.label_col!r} (columns: {header[:5]}...); set label_col or null")
        col = header.index(cfg.label_col)
        labels = {cfg.label_col: torch.from_numpy(table[:, col]).long()}
        table = np.delete(table, col, axis=1)
    return SeriesSource(torch.from_numpy(table).float(), labels)


class SinesConfig(ComponentConfig):
    """``num_series`` (512) sines of ``length`` (128) in ``num_classes`` (4) frequency bands, random phase and noise; ``seed`` (0)."""

    num_series: int = Field(512, ge=2)
    length: int = Field(128, ge=8)
    num_classes: int = Field(4, ge=2)
    seed: int = 0


def sines(cfg: SinesConfig, ctx: BuildContext | None = None) -> SeriesSource:
    g = torch.Generator().manual_seed(cfg.seed)
    label = torch.randint(cfg.num_classes, (cfg.num_series,), generator=g)
    freq = (label.float() + 1 + 0.3 * torch.rand(cfg.num_series, generator=g)).unsqueeze(1)
    phase = 2 * torch.pi * torch.rand(cfg.num_series, 1, generator=g)
    t = torch.linspace(0, 1, cfg.length).unsqueeze(0)
    x = torch.sin(2 * torch.pi * freq * t + phase) + 0.1 * torch.randn(cfg.num_series, cfg.length, generator=g)
    return SeriesSource(x, {"band": label})


def write_example_csv(folder: Path) -> dict:
    """The contract suite's example for ``timeseries.csv``: a real CSV file of 12 labelled series."""
    source = sines(SinesConfig(num_series=12, length=16))
    rows = [",".join([str(int(y))] + [f"{v:.4f}" for v in x]) for x, y in zip(source.data.tolist(), source.labels["band"])]
    (folder / "series.csv").write_text(",".join(["label"] + [f"t{k}" for k in range(16)]) + "\n" + "\n".join(rows) + "\n")
    return {"path": str(folder / "series.csv")}
