"""Table loading edge cases: missing values, unseen categories, ragged rows, text in numeric columns, train-only scaling."""

import numpy as np
import pytest
import torch

from omnissl.errors import ConfigError, DataError
from omnissl_tabular.datasets import CSVTableConfig, SklearnTableConfig, csv_source, sklearn_source
from omnissl_tabular.schema import MISSING, UNSEEN, TableSchema

HEADER = "age,colour,income,label\n"


def write(path, text):
    path.write_text(text)
    return str(path)


@pytest.fixture
def table(tmp_path):
    rows = [f"{20 + i},{['red', 'green', 'blue'][i % 3]},{1000 * i},{'yes' if i % 2 else 'no'}\n" for i in range(20)]
    rows[4] = "24,?,,no\n"  # missing categorical ('?') and missing numeric (empty)
    train = write(tmp_path / "train.csv", HEADER + "".join(rows))
    test = write(tmp_path / "test.csv", HEADER + "30, purple, 5000, yes.\n31,red,?,no.\n")
    return train, test


def test_missing_values_unseen_categories_and_labels(table):
    train, test = table
    src = csv_source(CSVTableConfig(path=train, test_path=test, target="label", val_fraction=0.0))
    schema = src.schema
    assert [c.name for c in schema.numeric] == ["age", "income"]
    assert [c.name for c in schema.categorical] == ["colour", "income__missing"]  # indicator for the imputed column
    assert src.num.shape == (22, 2) and src.cat.shape == (22, 2)
    colour = src.cat[:, 0]
    assert colour[4] == MISSING  # '?' in the train file
    assert colour[20] == UNSEEN  # 'purple' never seen in the train split
    # the missing income cell is imputed with the train median and flagged by the indicator
    income = schema.numeric[1]
    assert income.has_missing
    torch.testing.assert_close(src.num[4, 1], torch.tensor((income.median - income.shift) / income.scale, dtype=torch.float32))
    assert src.cat[4, 1] == 3 and src.cat[0, 1] == 2 and src.cat[21, 1] == 3
    # test labels 'yes.' / 'no.' map to the train classes; the test rows are the test split
    assert src.labels["label"].tolist()[20:] == [1, 0]
    assert src.splits["test"].tolist() == [20, 21]
    assert len(src) == len(src.splits["train"]) == 20  # pretraining sees train rows only, not the test file
    assert len(csv_source(CSVTableConfig(path=train, test_path=test, target="label", val_fraction=0.2))) == 16


def test_scaling_uses_train_split_only(table):
    train, test = table
    src = csv_source(CSVTableConfig(path=train, test_path=test, target="label", val_fraction=0.2))
    ages = np.array([20 + i for i in range(20)], dtype=float)[src.splits["train"].numpy()]
    age = src.schema.numeric[0]
    assert age.shift == pytest.approx(ages.mean()) and age.scale == pytest.approx(ages.std())
    assert src.num[src.splits["train"], 0].mean().abs() < 1e-5
    assert src.num[20, 0] == pytest.approx((30 - ages.mean()) / ages.std(), rel=1e-5)


def test_schema_json_round_trip(table):
    train, test = table
    schema = csv_source(CSVTableConfig(path=train, test_path=test, target="label")).schema
    again = TableSchema.from_json(schema.to_json())
    assert again == schema
    # the encoder stores the schema in its state dict, so checkpoints and exports carry the preprocessing
    from omnissl.specs import BuildContext
    from omnissl_tabular.encoders import TabularTransformerConfig, build_tabular_transformer

    src = csv_source(CSVTableConfig(path=train, test_path=test, target="label"))
    encoder = build_tabular_transformer(TabularTransformerConfig(dim=8, depth=0, heads=2), BuildContext(data=src))
    assert "schema_json" in encoder.state_dict() and encoder.schema() == src.schema


def test_ragged_row_names_file_line_and_column(tmp_path):
    path = write(tmp_path / "bad.csv", HEADER + "1,red,10,no\n2,green,20\n")
    with pytest.raises(DataError, match=r"bad\.csv, line 3, column label: ragged row with 3 fields"):
        csv_source(CSVTableConfig(path=path, target="label"))
    path = write(tmp_path / "long.csv", HEADER + "1,red,10,no,extra\n")
    with pytest.raises(DataError, match=r"long\.csv, line 2, column #5"):
        csv_source(CSVTableConfig(path=path, target="label"))


def test_text_in_numeric_column_names_file_line_and_column(table, tmp_path):
    train, _ = table
    test = write(tmp_path / "test_bad.csv", HEADER + "30,red,5000,yes\n31,red,lots,no\n")
    with pytest.raises(DataError, match=r"test_bad\.csv, line 3, column 'income': text 'lots' in a numerical column"):
        csv_source(CSVTableConfig(path=train, test_path=test, target="label"))
    # declared numeric in the train file itself
    with pytest.raises(DataError, match=r"line \d+, column 'colour'"):
        csv_source(CSVTableConfig(path=train, target="label", numeric=["colour"]))


def test_config_errors_for_missing_keys_and_columns(table):
    with pytest.raises(ConfigError, match="data.path"):
        csv_source(CSVTableConfig(target="label"))
    with pytest.raises(DataError, match="not in the table"):
        csv_source(CSVTableConfig(path=table[0], target="nope"))


def test_parquet_reads_like_csv(table, tmp_path):
    import pandas as pd

    frame = pd.read_csv(table[0], na_values=["?"])
    frame.to_parquet(tmp_path / "t.parquet")
    src = csv_source(CSVTableConfig(path=str(tmp_path / "t.parquet"), target="label", val_fraction=0.0, test_fraction=0.0))
    assert src.num.shape == (20, 2) and src.schema.numeric[1].has_missing


def test_sklearn_tables_load_without_network():
    src = sklearn_source(SklearnTableConfig(table="wine"))
    assert src.num.shape == (178, 13) and src.cat.shape == (178, 0)
    assert set(src.labels["target"].tolist()) == {0, 1, 2}
    assert sum(len(v) for v in src.splits.values()) == 178
