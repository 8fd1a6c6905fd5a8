"""Every registered graph spec passes the core's contract suite (omnissl.testing.contracts)."""

from omnissl.plugins import PluginManager
from omnissl.testing.contracts import check_plugin


def test_graph_plugin_contracts():
    ran = check_plugin(PluginManager(), "graph")
    for name in ("graph.gat", "graph.gcn", "graph.gin", "graph.graphmae", "graph.grace", "graph.graphcl", "graph.dsla"):
        assert any(name in r for r in ran), f"{name} was not checked"


def test_every_module_moves_to_a_device():
    # the engine calls .to(device) on every component; a method shadowing nn.Module internals would break it
    from omnissl.specs import BuildContext

    registry = PluginManager().registry
    for modality in ("graph.nodes", "graph.graphs"):
        spec = registry.specs["modalities"][modality]
        for name in spec.views:
            registry.get("view_generators", name).build({}, BuildContext(data=spec.example_data())).to("cpu")


def test_every_graph_dataset_is_built_from_its_example():
    pm = PluginManager()
    ran = check_plugin(pm, "graph")
    names = [n for n, s in pm.registry.specs["datasets"].items() if s.provider.plugin == "graph"]
    assert len(names) == 5 and all(f"dataset[{n}]" in ran for n in names)
