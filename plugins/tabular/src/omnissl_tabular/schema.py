"""The table schema: which columns are numerical or categorical, and the encoding fitted on the train split.

A :class:`TableSchema` is fitted once on the training rows and then applied to every split, so nothing of
the validation or test rows leaks into the preprocessing. It is plain data (``to_json`` / ``from_json``) and
is written next to a run's checkpoints.

Encoding rules (also in ``docs/domains/tabular.md``):

* numerical: missing cells (NaN, empty, ``?`` or any of ``missing_values``) are imputed with the train
  median; a column that had missing cells in the train split also gets a categorical indicator feature
  ``<name>__missing`` so a model can tell an imputed value from a real one. Values are then scaled with
  statistics of the train split only (``standard``: z-score, ``minmax``: to [0, 1] as the T-JEPA code,
  ``none``).
* categorical: index ``0`` is reserved for categories unseen at fit time, ``1`` for missing cells, and the
  train categories (sorted) take ``2 ..``. So a table never fails on a new category at test time.

Shapes:
    ``transform(frame)`` -> ``num`` ``(N, F_num)`` float32, ``cat`` ``(N, F_cat)`` int64.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from omnissl.errors import DataError

UNSEEN, MISSING = 0, 1  # reserved categorical indices; train categories start at 2
RESERVED = 2


@dataclass
class NumericColumn:
    """A numerical feature: train ``median`` for imputation and ``shift``/``scale`` (x - shift) / scale."""

    name: str
    median: float
    shift: float
    scale: float
    has_missing: bool = False


@dataclass
class CategoricalColumn:
    """A categorical feature: its train ``categories`` (index ``i`` encodes as ``i + 2``)."""

    name: str
    categories: list[str]
    indicator_of: str | None = None  # set for the ``<name>__missing`` indicator of a numerical column

    @property
    def cardinality(self) -> int:
        return len(self.categories) + RESERVED


@dataclass
class TableSchema:
    """Columns, target and the fitted encoding of one table (see the module docstring)."""

    numeric: list[NumericColumn] = field(default_factory=list)
    categorical: list[CategoricalColumn] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    scaling: str = "standard"

    @property
    def num_features(self) -> int:
        return len(self.numeric) + len(self.categorical)

    @property
    def cardinalities(self) -> list[int]:
        return [c.cardinality for c in self.categorical]

    @property
    def feature_names(self) -> list[str]:
        """Numerical features first, then categorical ones: the token order of the encoder."""
        return [c.name for c in self.numeric] + [c.name for c in self.categorical]

    # ------------------------------------------------------------------------------------ fit / apply
    @classmethod
    def fit(
        cls,
        frame: pd.DataFrame,
        numeric: list[str],
        categorical: list[str],
        targets: list[str],
        scaling: Literal["standard", "minmax", "none"] = "standard",
    ) -> TableSchema:
        """Fit on the train rows of ``frame`` (already typed: numeric columns are float with NaN)."""
        schema = cls(targets=list(targets), scaling=scaling)
        indicators = []
        for name in numeric:
            values = frame[name].to_numpy(dtype=np.float64)
            observed = values[~np.isnan(values)]
            median = float(np.median(observed)) if observed.size else 0.0
            filled = np.where(np.isnan(values), median, values)
            if scaling == "standard":
                shift, scale = float(filled.mean()), float(filled.std())
            elif scaling == "minmax":
                shift, scale = float(filled.min()), float(filled.max() - filled.min())
            else:
                shift, scale = 0.0, 1.0
            has_missing = bool(np.isnan(values).any())
            schema.numeric.append(NumericColumn(name, median, shift, scale if scale > 1e-12 else 1.0, has_missing))
            if has_missing:
                indicators.append(CategoricalColumn(f"{name}__missing", ["observed", "imputed"], indicator_of=name))
        for name in categorical:
            cats = sorted({str(v) for v in frame[name].dropna().tolist()})
            schema.categorical.append(CategoricalColumn(name, cats))
        schema.categorical.extend(indicators)
        return schema

    def transform(self, frame: pd.DataFrame) -> tuple[Tensor, Tensor]:
        """Encode ``frame`` with the fitted statistics: ``(num (N, F_num) float32, cat (N, F_cat) int64)``."""
        n = len(frame)
        num = np.zeros((n, len(self.numeric)), dtype=np.float32)
        for j, col in enumerate(self.numeric):
            values = frame[col.name].to_numpy(dtype=np.float64)
            values = np.where(np.isnan(values), col.median, values)
            num[:, j] = (values - col.shift) / col.scale
        cat = np.zeros((n, len(self.categorical)), dtype=np.int64)
        for j, col in enumerate(self.categorical):
            if col.indicator_of is not None:
                cat[:, j] = np.where(frame[col.indicator_of].isna().to_numpy(), RESERVED + 1, RESERVED)
                continue
            lookup = {c: i + RESERVED for i, c in enumerate(col.categories)}
            series = frame[col.name]
            missing = series.isna().to_numpy()
            codes = np.array([lookup.get(str(v), UNSEEN) for v in series.tolist()], dtype=np.int64)
            cat[:, j] = np.where(missing, MISSING, codes)
        return torch.from_numpy(num), torch.from_numpy(cat)

    # -------------------------------------------------------------------------------------- storage
    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> TableSchema:
        raw = json.loads(text)
        try:
            return cls(
                numeric=[NumericColumn(**c) for c in raw["numeric"]],
                categorical=[CategoricalColumn(**c) for c in raw["categorical"]],
                targets=list(raw["targets"]),
                scaling=raw["scaling"],
            )
        except (KeyError, TypeError) as exc:
            raise DataError(f"not a tabular schema JSON ({exc}); write one with TableSchema.to_json()") from exc
