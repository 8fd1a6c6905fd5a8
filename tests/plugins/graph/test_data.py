"""Graph data sources: loaders, user errors, batching of graph sets and neighbour sampling."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from omnissl.errors import DataError
from omnissl_graph.datasets import (
    EdgeListConfig,
    PlanetoidConfig,
    SBMConfig,
    SyntheticGraphsConfig,
    TUConfig,
    generate_graphs,
    generate_sbm,
    load_edge_list,
    load_planetoid,
    load_tu,
)

DATA = Path(os.environ.get("OMNISSL_DATA", Path(__file__).resolve().parents[3].parent / "shared" / "data"))


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_edge_list_loads_undirected_graph_with_split(tmp_path):
    edges = _write(tmp_path, "e.csv", "src,dst\n0,1\n1,2\n2,3\n")
    np.save(tmp_path / "x.npy", np.eye(4, dtype=np.float32))
    np.save(tmp_path / "y.npy", np.array([0, 1, 0, 1]))
    src = load_edge_list(EdgeListConfig(edges=edges, features=str(tmp_path / "x.npy"), labels=str(tmp_path / "y.npy"), split=[0.5, 0.25, 0.25]))
    assert len(src) == 1 and src.num_nodes == 4 and src.num_features == 4
    assert src.data.edge_index.shape[1] == 6  # both directions
    assert sorted(torch.cat(list(src.splits.values())).tolist()) == [0, 1, 2, 3]


def test_edge_naming_missing_node_is_a_data_error(tmp_path):
    edges = _write(tmp_path, "e.csv", "0,1\n1,7\n")
    np.save(tmp_path / "x.npy", np.zeros((3, 2), dtype=np.float32))
    with pytest.raises(DataError, match=r"row 2 names node \[1, 7\].*3 nodes"):
        load_edge_list(EdgeListConfig(edges=edges, features=str(tmp_path / "x.npy")))


def test_feature_and_label_length_mismatch(tmp_path):
    edges = _write(tmp_path, "e.csv", "0,1\n1,2\n")
    np.save(tmp_path / "x.npy", np.zeros((3, 2), dtype=np.float32))
    with pytest.raises(DataError, match="features.*2 rows.*5 nodes"):
        np.save(tmp_path / "x2.npy", np.zeros((2, 2), dtype=np.float32))
        load_edge_list(EdgeListConfig(edges=edges, features=str(tmp_path / "x2.npy"), num_nodes=5))
    np.save(tmp_path / "y.npy", np.array([0, 1]))
    with pytest.raises(DataError, match="2 labels but the graph has 3 nodes"):
        load_edge_list(EdgeListConfig(edges=edges, features=str(tmp_path / "x.npy"), labels=str(tmp_path / "y.npy")))


def test_empty_graph_and_missing_file(tmp_path):
    np.save(tmp_path / "e.npy", np.zeros((0, 2), dtype=np.int64))
    with pytest.raises(DataError, match="no edges"):
        load_edge_list(EdgeListConfig(edges=str(tmp_path / "e.npy")))
    with pytest.raises(DataError, match="file not found"):
        load_edge_list(EdgeListConfig(edges=str(tmp_path / "nope.csv")))
    with pytest.raises(DataError, match="no Planetoid raw files"):
        load_planetoid(PlanetoidConfig(root=str(tmp_path)))


@pytest.mark.skipif(not (DATA / "graph/planetoid/Cora/raw").is_dir(), reason="shared data not available")
def test_planetoid_public_split_and_nothing_written_next_to_raw():
    raw = DATA / "graph/planetoid/Cora/raw"
    before = sorted(p.name for p in raw.parent.iterdir())
    src = load_planetoid(PlanetoidConfig(root=str(DATA / "graph/planetoid")))
    assert src.num_nodes == 2708 and src.num_features == 1433 and len(src) == 1
    assert {k: v.numel() for k, v in src.splits.items()} == {"train": 140, "val": 500, "test": 1000}
    assert torch.allclose(src.data.x.sum(1)[src.data.x.sum(1) > 0], torch.tensor(1.0))  # row-normalised
    assert sorted(p.name for p in raw.parent.iterdir()) == before


@pytest.mark.skipif(not (DATA / "graph/tu/MUTAG/raw").is_dir(), reason="shared data not available")
def test_tu_mutag():
    src = load_tu(TUConfig(root=str(DATA / "graph/tu"), dataset="MUTAG"))
    assert len(src) == 188 and src.num_features == 7
    assert torch.bincount(src.labels["class"]).tolist() == [63, 125]
    looped = load_tu(TUConfig(root=str(DATA / "graph/tu"), dataset="MUTAG", self_loops=True))
    ei = looped.store.edge_index
    loops = ei[0] == ei[1]
    assert int(loops.sum()) == looped.store.num_nodes and torch.equal(torch.unique(ei[0, loops]), torch.arange(looped.store.num_nodes))
    assert int((~loops).sum()) == src.store.edge_index.shape[1]


def test_graph_set_batch_gathers_graphs_exactly():
    src = generate_graphs(SyntheticGraphsConfig(num_graphs=10))
    graphs = [src.batch(torch.tensor([i])) for i in range(10)]
    idx = torch.tensor([7, 2, 9])
    b = src.batch(idx)
    assert b.num_graphs == 3 and torch.equal(b.ptr, torch.tensor([0, *np.cumsum([graphs[i].x.shape[0] for i in idx.tolist()])]))
    start = 0
    for j, i in enumerate(idx.tolist()):
        g = graphs[i]
        n = g.x.shape[0]
        assert torch.equal(b.x[start : start + n], g.x)
        inside = (b.edge_index[0] >= start) & (b.edge_index[0] < start + n)
        assert torch.equal(b.edge_index[:, inside] - start, g.edge_index)
        assert torch.all(b.batch[start : start + n] == j)
        start += n


def test_neighbor_sampled_source():
    full = generate_sbm(SBMConfig(num_nodes=500, avg_degree=6))
    src = generate_sbm(SBMConfig(num_nodes=500, avg_degree=6, num_neighbors=[3, 2]))
    assert len(src) == 500
    seeds = torch.tensor([5, 17, 3, 400])
    sub = src.batch(seeds)
    assert sub.batch_size == 4 and torch.equal(sub.n_id[:4], seeds)
    assert sub.n_id.unique().numel() == sub.n_id.numel()
    adjacency = set(map(tuple, full.data.edge_index.T.tolist()))
    for a, b in sub.edge_index.T.tolist():
        assert (int(sub.n_id[a]), int(sub.n_id[b])) in adjacency
    assert torch.equal(sub.x, full.data.x[sub.n_id])


# ----------------------------------------------------------------------------- TU node features as they come
def _write_tu(root, name, node_labels=None, node_attributes=None):
    """Two triangles (graphs 1 and 2) in the TU raw layout; optional node label / attribute files."""
    raw = root / name / "raw"
    raw.mkdir(parents=True)
    edges = [(1, 2), (2, 1), (2, 3), (3, 2), (1, 3), (3, 1), (4, 5), (5, 4), (5, 6), (6, 5)]
    (raw / f"{name}_A.txt").write_text("".join(f"{a}, {b}\n" for a, b in edges))
    (raw / f"{name}_graph_indicator.txt").write_text("1\n1\n1\n2\n2\n2\n")
    (raw / f"{name}_graph_labels.txt").write_text("1\n2\n")
    if node_labels is not None:
        (raw / f"{name}_node_labels.txt").write_text("".join(f"{v}\n" for v in node_labels))
    if node_attributes is not None:
        (raw / f"{name}_node_attributes.txt").write_text("".join(", ".join(map(str, row)) + "\n" for row in node_attributes))
    return root


def test_tu_uses_continuous_attributes_by_default_standardized_and_says_so(tmp_path, capsys):
    from omnissl_graph.datasets import TUConfig, load_tu

    attrs = [[10.0, 760.0], [20.0, 700.0], [30.0, 640.0], [40.0, 580.0], [50.0, 520.0], [60.0, 460.0]]
    root = _write_tu(tmp_path, "ENZ", node_labels=[0, 1, 2, 0, 1, 2], node_attributes=attrs)
    source = load_tu(TUConfig(root=str(root), dataset="ENZ"))
    x = source.store.x
    assert x.shape == (6, 3 + 2)  # 3 one-hot node labels + 2 attributes
    assert torch.equal(x[:, :3], torch.eye(3).repeat(2, 1))
    expected = torch.tensor(attrs)
    expected = (expected - expected.mean(0)) / expected.std(0)
    assert torch.allclose(x[:, 3:], expected, atol=1e-5)
    assert "3 one-hot node labels, 2 continuous attributes (standardized)" in capsys.readouterr().out
    raw = load_tu(TUConfig(root=str(root), dataset="ENZ", scale_node_attr="none"))
    assert torch.equal(raw.store.x[:, 3:], torch.tensor(attrs))
    left_out = load_tu(TUConfig(root=str(root), dataset="ENZ", use_node_attr=False))
    assert left_out.store.x.shape == (6, 3)
    assert "2 continuous attributes left out" in capsys.readouterr().out


def test_featureless_tu_sets_get_graphmaes_one_hot_degree(tmp_path, capsys):
    from omnissl_graph.datasets import TUConfig, load_tu

    source = load_tu(TUConfig(root=str(_write_tu(tmp_path, "IMDB")), dataset="IMDB"))
    x = source.store.x
    degree = torch.tensor([2, 2, 2, 1, 2, 1])  # a triangle, then a path of three nodes
    assert torch.equal(x, torch.nn.functional.one_hot(degree, 3).float())
    assert "one-hot node degree" in capsys.readouterr().out
    clipped = load_tu(TUConfig(root=str(tmp_path), dataset="IMDB", max_degree=1))
    assert clipped.store.x.shape == (6, 2)
