"""Graph sources say what was loaded (``describe()``, printed at the start of a run) from real file layouts."""

from omnissl_graph import datasets, examples


def test_node_graph_describe_counts_nodes_edges_features_classes_and_splits(tmp_path):
    source = datasets.load_planetoid(datasets.PlanetoidConfig(**examples.write_planetoid(tmp_path)))
    assert source.describe() == ("one graph: 530 nodes, 1,052 directed edges; 8 node features; label 'class': 3 classes; "
                                 "splits train 10 / val 500 / test 20")
    sbm = datasets.generate_sbm(datasets.SBMConfig(num_nodes=40, num_features=8, holdout_edges=0.1))
    assert f"{sbm.heldout_edges.shape[1]} held out for link prediction" in sbm.describe()


def test_graph_set_describe_gives_sizes_and_what_the_tu_features_are(tmp_path):
    source = datasets.load_tu(datasets.TUConfig(**examples.write_tu(tmp_path)))
    nodes, edges = source.num_nodes_per.float().mean(), source.num_edges_per.float().mean()
    assert source.describe() == (f"6 graphs, {nodes:.1f} nodes and {edges:.1f} directed edges per graph on average; 4 node features "
                                 "(2 one-hot node labels, 2 continuous attributes (standardized)); label 'class': 2 classes; "
                                 "no splits (graph probes use k-fold cross-validation)")
