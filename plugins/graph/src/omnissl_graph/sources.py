"""Data sources over graphs: one whole graph (node-level), neighbour-sampled seed batches, a set of graphs.

- :class:`NodeGraphSource`: one graph that lives on the device; ``len == 1`` and ``batch()`` returns the
  whole graph; labels and splits are per node, so the core's probes and ``encode_all`` work per node.
- :class:`NeighborSampledSource`: the same graph addressed by node (``len == num_nodes``); ``batch(seeds)``
  samples ``num_neighbors[k]`` neighbours per node at hop ``k`` (GraphSAGE-style, the scheme of PyG's
  ``NeighborLoader``) and returns the induced subgraph with the seeds first and ``batch_size`` set, so
  encoders pool the seed nodes. PyG's own sampler needs ``pyg-lib`` or ``torch-sparse`` (not installed
  here), so sampling is a few vectorised torch ops on a CSR adjacency: with replacement, on the device.
- :class:`GraphSetSource`: many small graphs pre-collated into one PyG ``Batch`` on the device;
  ``batch(idx)`` gathers graphs by index with vectorised pointer arithmetic (no Python loop per graph).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.data import Batch, Data
from torch_geometric.utils import subgraph

from omnissl.device import move_to_device


def _segment_arange(counts: Tensor) -> Tensor:
    """``[0..c0-1, 0..c1-1, ...]`` for a 1-D tensor of counts."""
    starts = torch.cumsum(counts, 0) - counts
    return torch.arange(int(counts.sum()), device=counts.device) - torch.repeat_interleave(starts, counts)


def _labels_and_splits(labels: dict[str, Tensor], splits: dict[str, Tensor]) -> str:
    """``label 'class': 7 classes; splits train 140 / val 500 / test 1,000`` (or ``no splits``)."""
    classes = "; ".join(f"label {k!r}: {int(v.max()) + 1} classes" for k, v in labels.items()) or "no labels"
    order = sorted(splits, key=lambda k: ("train", "val", "test").index(k) if k in ("train", "val", "test") else 3)
    sizes = " / ".join(f"{k} {int(splits[k].numel()):,}" for k in order)
    return f"{classes}; " + (f"splits {sizes}" if sizes else "no splits (graph probes use k-fold cross-validation)")


class NodeGraphSource:
    """One graph for node-level training and probing.

    Args:
        data: a PyG ``Data`` with ``x (N, F)`` and ``edge_index (2, E)``.
        labels: per-node targets by name, e.g. ``{"class": y}``.
        splits: node index tensors by split name.
        heldout_edges: ``(2, H)`` edges removed from ``data`` for link-prediction evaluation, or ``None``.
    """

    def __init__(self, data: Data, labels: dict[str, Tensor] | None = None, splits: dict[str, Tensor] | None = None, heldout_edges: Tensor | None = None):
        self.data = Data(x=data.x, edge_index=data.edge_index, num_nodes=data.num_nodes)
        self.labels = labels or {}
        self.splits = splits or {}
        self.heldout_edges = heldout_edges

    @property
    def num_features(self) -> int:
        return int(self.data.x.shape[1])

    @property
    def num_nodes(self) -> int:
        return int(self.data.num_nodes)

    def __len__(self) -> int:
        return 1

    def batch(self, indices: Tensor) -> Data:
        return self.data

    def to(self, device: torch.device) -> NodeGraphSource:
        self.data = self.data.to(device)
        self.labels = move_to_device(self.labels, device)
        self.splits = move_to_device(self.splits, device)
        self.heldout_edges = None if self.heldout_edges is None else self.heldout_edges.to(device)
        return self

    def surface_features(self) -> Tensor:
        return self.data.x.float()

    def describe(self) -> str:
        """One line for the start of a run: nodes, edges, features, classes and split sizes of the graph."""
        held = f", {int(self.heldout_edges.shape[1]):,} held out for link prediction" if self.heldout_edges is not None and self.heldout_edges.numel() else ""
        note = f" ({self.feature_note})" if getattr(self, "feature_note", "") else ""
        return (f"one graph: {self.num_nodes:,} nodes, {int(self.data.edge_index.shape[1]):,} directed edges{held}; "
                f"{self.num_features} node features{note}; {_labels_and_splits(self.labels, self.splits)}")


class NeighborSampledSource(NodeGraphSource):
    """A large graph trained in neighbour-sampled mini-batches of seed nodes (``len == num_nodes``).

    Args:
        num_neighbors: neighbours drawn per node at each hop, e.g. ``[10, 10]`` (with replacement).
        seed: base seed of the sampler; each call advances an internal generator.
    """

    def __init__(self, data: Data, num_neighbors: list[int], labels=None, splits=None, heldout_edges=None, seed: int = 0):
        super().__init__(data, labels, splits, heldout_edges)
        self.num_neighbors = list(num_neighbors)
        self._seed = seed
        self._build_csr()

    def _build_csr(self) -> None:
        src, dst = self.data.edge_index  # messages flow src -> dst: a node samples among its in-neighbours
        order = torch.argsort(dst)
        self.col = src[order]
        self.rowptr = torch.zeros(self.num_nodes + 1, dtype=torch.long, device=src.device)
        self.rowptr[1:] = torch.cumsum(torch.bincount(dst, minlength=self.num_nodes), 0)
        self.generator = torch.Generator(device=src.device).manual_seed(self._seed)

    def __len__(self) -> int:
        return self.num_nodes

    def to(self, device: torch.device) -> NeighborSampledSource:
        super().to(device)
        self._build_csr()
        return self

    def batch(self, indices: Tensor) -> Data:
        seeds = indices.to(self.rowptr.device)
        nodes, frontier = seeds, seeds
        for k in self.num_neighbors:
            start, deg = self.rowptr[frontier], self.rowptr[frontier + 1] - self.rowptr[frontier]
            has = deg > 0
            start, deg = start[has], deg[has]
            draw = torch.rand((start.numel(), k), generator=self.generator, device=seeds.device)
            picked = self.col[(start[:, None] + (draw * deg[:, None]).long()).reshape(-1)]
            new = torch.unique(picked)
            frontier = new
            nodes = torch.cat([nodes, new])
        # keep first occurrences so the seeds stay first, in order
        uniq, inverse = torch.unique(nodes, return_inverse=True)
        first = torch.full((uniq.numel(),), nodes.numel(), dtype=torch.long, device=nodes.device)
        first.scatter_reduce_(0, inverse, torch.arange(nodes.numel(), device=nodes.device), reduce="amin")
        nodes = nodes[torch.sort(first).values]
        edge_index, _ = subgraph(nodes, self.data.edge_index, relabel_nodes=True, num_nodes=self.num_nodes)
        out = Data(x=self.data.x[nodes], edge_index=edge_index, num_nodes=nodes.numel())
        out.n_id = nodes
        out.batch_size = int(seeds.numel())
        return out


class GraphSetSource:
    """A set of graphs for graph-level training, pre-collated into one ``Batch`` on the device.

    Args:
        graphs: PyG ``Data`` objects with ``x`` and ``edge_index``.
        labels: per-graph targets by name.
        splits: graph index tensors by split name (TU sets have none; graph probes use k-fold CV).
    """

    def __init__(self, graphs: list[Data], labels: dict[str, Tensor] | None = None, splits: dict[str, Tensor] | None = None):
        self.store = Batch.from_data_list([Data(x=g.x, edge_index=g.edge_index, num_nodes=g.num_nodes) for g in graphs])
        self.labels = labels or {}
        self.splits = splits or {}
        self._index()

    def _index(self) -> None:
        s = self.store
        self.node_ptr = s.ptr
        self.num_nodes_per = s.ptr[1:] - s.ptr[:-1]
        edge_graph = s.batch[s.edge_index[0]]
        self.num_edges_per = torch.bincount(edge_graph, minlength=s.num_graphs)
        order = torch.argsort(edge_graph, stable=True)
        self.edges = s.edge_index[:, order]
        self.edge_ptr = torch.zeros(s.num_graphs + 1, dtype=torch.long, device=s.x.device)
        self.edge_ptr[1:] = torch.cumsum(self.num_edges_per, 0)

    @property
    def num_features(self) -> int:
        return int(self.store.x.shape[1])

    def __len__(self) -> int:
        return int(self.store.num_graphs)

    def batch(self, indices: Tensor) -> Batch:
        idx = indices.to(self.node_ptr.device)
        n_counts, e_counts = self.num_nodes_per[idx], self.num_edges_per[idx]
        node_ids = torch.repeat_interleave(self.node_ptr[idx], n_counts) + _segment_arange(n_counts)
        edge_ids = torch.repeat_interleave(self.edge_ptr[idx], e_counts) + _segment_arange(e_counts)
        new_start = torch.cumsum(n_counts, 0) - n_counts
        shift = torch.repeat_interleave(new_start - self.node_ptr[idx], e_counts)
        edge_index = self.edges[:, edge_ids] + shift
        graph_of_node = torch.repeat_interleave(torch.arange(idx.numel(), device=idx.device), n_counts)
        ptr = torch.cat([new_start, new_start[-1:] + n_counts[-1:]])
        out = Batch(x=self.store.x[node_ids], edge_index=edge_index, batch=graph_of_node, ptr=ptr)
        out._num_graphs = int(idx.numel())
        return out

    def to(self, device: torch.device) -> GraphSetSource:
        self.store = self.store.to(device)
        self.labels = move_to_device(self.labels, device)
        self.splits = move_to_device(self.splits, device)
        self._index()
        return self

    def surface_features(self) -> Tensor:
        """Raw-feature baseline: the sum and mean of each graph's node features."""
        from torch_geometric.nn import global_add_pool, global_mean_pool

        s = self.store
        return torch.cat([global_add_pool(s.x.float(), s.batch), global_mean_pool(s.x.float(), s.batch)], dim=1)

    def describe(self) -> str:
        """One line for the start of a run: graphs, mean nodes and edges per graph, features, classes, splits."""
        note = f" ({self.feature_note})" if getattr(self, "feature_note", "") else ""
        return (f"{len(self):,} graphs, {float(self.num_nodes_per.float().mean()):.1f} nodes and "
                f"{float(self.num_edges_per.float().mean()):.1f} directed edges per graph on average; "
                f"{self.num_features} node features{note}; {_labels_and_splits(self.labels, self.splits)}")
