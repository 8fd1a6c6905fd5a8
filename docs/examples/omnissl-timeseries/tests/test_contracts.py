"""The plugin passes omnissl's contract suite: every dataset, encoder, view, objective and evaluator."""

from omnissl.testing.contracts import check_plugin


def test_contracts(plugin_manager):
    ran = check_plugin(plugin_manager, "timeseries")
    assert "dataset[timeseries.csv]" in ran and "evaluator[timeseries.probe]" in ran
