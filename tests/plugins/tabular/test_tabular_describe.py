"""``TableSource.describe()``: the line printed at the start of a run says what was loaded."""

import numpy as np
import pandas as pd

from omnissl_tabular.datasets import build_source, example_source


def test_describe_gives_rows_per_split_column_kinds_and_a_class_target():
    line = example_source().describe()
    assert line == ("48 rows (train 24 / val 12 / test 12), pretraining on 24; 3 numeric columns (a, b, c), "
                    "2 categorical (colour, size); target 'y': classification, 2 classes")


def test_describe_names_a_regression_target():
    g = np.random.default_rng(0)
    frame = pd.DataFrame({"a": g.normal(size=40), "y": g.normal(size=40)}).astype(object)
    split = {"train": np.arange(20), "val": np.arange(20, 30), "test": np.arange(30, 40)}
    line = build_source(frame, np.arange(2, 42), "reg", ["y"], split).describe()
    assert "40 rows (train 20 / val 10 / test 10)" in line and "1 numeric columns (a)" in line
    assert "0 categorical (none)" in line and line.endswith("target 'y': regression")
