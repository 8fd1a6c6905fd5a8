"""Every registered tabular spec passes the core contract suite."""

from omnissl.plugins import PluginManager
from omnissl.testing.contracts import check_plugin


def test_tabular_plugin_contracts():
    ran = check_plugin(PluginManager(), "tabular")
    for name in ("tabular.transformer", "tabular.tjepa", "tabular.scarf", "tabular.vime", "tabular.tjepa_masking", "tabular.probe"):
        assert any(name in check for check in ran), name
    for name in ("tabular.csv", "tabular.sklearn"):  # each built from its example input
        assert f"dataset[{name}]" in ran, name


def test_csv_example_reads_a_missing_cell_and_text_columns(tmp_path):
    from omnissl_tabular.datasets import CSVTableConfig, csv_source
    from omnissl_tabular.examples import write_csv

    source = csv_source(CSVTableConfig(**write_csv(tmp_path)))
    assert [c.name for c in source.schema.numeric] == ["age", "hours"]
    assert [c.name for c in source.schema.categorical] == ["workclass", "colour", "hours__missing"]  # the "?" cell: an indicator
    assert source.label_kinds == {"income": "classification"} and source.num_rows == 40
