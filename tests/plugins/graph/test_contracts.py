"""Every registered graph spec passes the core's contract suite (omnissl.testing.contracts)."""

from omnissl.plugins import PluginManager
from omnissl.testing.contracts import check_plugin


def test_graph_plugin_contracts():
    ran = check_plugin(PluginManager(), "graph")
    for name in ("graph.gat", "graph.gcn", "graph.gin", "graph.graphmae", "graph.grace", "graph.graphcl", "graph.dsla"):
        assert any(name in r for r in ran), f"{name} was not checked"
