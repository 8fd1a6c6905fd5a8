"""Tiny real inputs of every graph dataset's format, for ``DatasetSpec.example`` (the contract suite builds each).

Each ``write_*(folder)`` writes files in the layout its loader reads and returns the dataset parameters
that read them; the generated sources get small settings instead. Seeded: the same files on every call.
"""

from __future__ import annotations

import pickle
from collections import defaultdict
from pathlib import Path

import numpy as np


def write_planetoid(folder: Path) -> dict:
    """A Planetoid raw folder ``Cora/raw/ind.cora.*`` in Kipf's format (scipy CSR, numpy and defaultdict pickles).

    PyG's reader takes the 500 nodes after the labelled training rows as the validation split, so the
    smallest graph it reads has a little over 500 nodes: 10 labelled, 500 more in ``allx``, 20 test nodes.
    """
    g = np.random.default_rng(0)
    raw = folder / "Cora" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    import scipy.sparse as sp

    labelled, unlabelled, test, features, classes = 10, 500, 20, 8, 3
    n_all = labelled + unlabelled
    y_all = g.integers(classes, size=n_all + test)
    x_all = (g.random((n_all + test, features)) < 0.3).astype(np.float32) + np.eye(classes, features, dtype=np.float32)[y_all]
    one_hot = np.eye(classes, dtype=np.int64)[y_all]
    graph = defaultdict(list)
    for a in range(n_all + test):
        for b in g.choice(np.flatnonzero(y_all == y_all[a]), size=2):  # edges mostly within a class
            graph[a].append(int(b))
    arrays = {"x": sp.csr_matrix(x_all[:labelled]), "y": one_hot[:labelled], "allx": sp.csr_matrix(x_all[:n_all]),
              "ally": one_hot[:n_all], "tx": sp.csr_matrix(x_all[n_all:]), "ty": one_hot[n_all:], "graph": graph}
    for name, value in arrays.items():
        with open(raw / f"ind.cora.{name}", "wb") as fh:
            pickle.dump(value, fh, protocol=4)  # numpy arrays pickle through _reconstruct, as in the published files
    (raw / "ind.cora.test.index").write_text("".join(f"{i}\n" for i in g.permutation(np.arange(n_all, n_all + test))))
    return {"root": str(folder), "dataset": "Cora"}


def write_tu(folder: Path) -> dict:
    """A TU raw folder ``TOY/raw/TOY_*.txt``: 6 graphs (triangles and paths), node labels and attributes."""
    raw = folder / "TOY" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    edges, indicator, graph_labels, node_labels, attributes = [], [], [], [], []
    node = 1
    for graph in range(6):
        triangle = graph % 2 == 0
        nodes = list(range(node, node + 3 + graph % 3))
        pairs = list(zip(nodes, nodes[1:])) + ([(nodes[-1], nodes[0])] if triangle else [])
        edges += [e for a, b in pairs for e in ((a, b), (b, a))]  # TU lists both directions
        indicator += [graph + 1] * len(nodes)
        graph_labels.append(1 if triangle else -1)
        node_labels += [i % 2 for i in range(len(nodes))]
        attributes += [(0.5 * i, 100.0 + graph) for i in range(len(nodes))]
        node += len(nodes)
    (raw / "TOY_A.txt").write_text("".join(f"{a}, {b}\n" for a, b in edges))
    (raw / "TOY_graph_indicator.txt").write_text("".join(f"{i}\n" for i in indicator))
    (raw / "TOY_graph_labels.txt").write_text("".join(f"{y}\n" for y in graph_labels))
    (raw / "TOY_node_labels.txt").write_text("".join(f"{v}\n" for v in node_labels))
    (raw / "TOY_node_attributes.txt").write_text("".join(f"{a}, {b}\n" for a, b in attributes))
    return {"root": str(folder), "dataset": "TOY"}


def write_edge_list(folder: Path) -> dict:
    """``edges.csv`` (with a header), ``features.npy`` (N, 4) and ``labels.csv`` (one class per line) of 30 nodes."""
    g = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    labels = np.arange(30) % 3
    edges = [(a, b) for a in range(30) for b in g.choice(np.flatnonzero(labels == labels[a]), size=2) if a != b]
    (folder / "edges.csv").write_text("src,dst\n" + "".join(f"{a},{b}\n" for a, b in edges))
    np.save(folder / "features.npy", (g.normal(size=(30, 4)) + np.eye(3, 4)[labels]).astype(np.float32))
    (folder / "labels.csv").write_text("".join(f"{v}\n" for v in labels))
    return {"edges": str(folder / "edges.csv"), "features": str(folder / "features.npy"), "labels": str(folder / "labels.csv")}
