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
