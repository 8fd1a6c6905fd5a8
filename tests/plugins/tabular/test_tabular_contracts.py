"""Every registered tabular spec passes the core contract suite."""

from omnissl.plugins import PluginManager
from omnissl.testing.contracts import check_plugin


def test_tabular_plugin_contracts():
    ran = check_plugin(PluginManager(), "tabular")
    for name in ("tabular.transformer", "tabular.tjepa", "tabular.scarf", "tabular.vime", "tabular.tjepa_masking", "tabular.probe"):
        assert any(name in check for check in ran), name
