"""Graph augmentations for contrastive views (GRACE, GraphCL), batched on the device.

Every function draws its randomness from an explicit ``torch.Generator`` and works on a whole ``Data``
(one graph) or ``Batch`` (many graphs) at once, with no Python loop over graphs.

References: Zhu et al., "Deep Graph Contrastive Representation Learning" (GRACE), 2020, section 3.2 and
github.com/CRIPAC-DIG/GRACE; You et al., "Graph Contrastive Learning with Augmentations" (GraphCL),
NeurIPS 2020, section 3.1 and github.com/Shen-Lab/GraphCL ``unsupervised_TU/aug.py``.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor
from torch_geometric.data import Batch
from torch_geometric.utils import scatter, subgraph


def _rand(shape, generator: torch.Generator, device) -> Tensor:
    return torch.rand(shape, generator=generator, device=device)


def _graph_ids(batch: Any) -> tuple[Tensor, int]:
    ids = getattr(batch, "batch", None)
    if ids is None:
        return torch.zeros(batch.x.shape[0], dtype=torch.long, device=batch.x.device), 1
    return ids, int(batch.num_graphs)


def _replace(batch: Any, **fields) -> Any:
    out = copy.copy(batch)
    for k, v in fields.items():
        setattr(out, k, v)
    return out


def drop_edges(batch: Any, p: float, generator: torch.Generator) -> Any:
    """Remove each edge (directed entry) with probability ``p`` (GRACE's ``dropout_adj``)."""
    keep = _rand(batch.edge_index.shape[1], generator, batch.x.device) >= p
    return _replace(batch, edge_index=batch.edge_index[:, keep])


def mask_feature_columns(batch: Any, p: float, generator: torch.Generator) -> Any:
    """Zero each feature dimension with probability ``p`` for every node (GRACE's ``drop_feature``)."""
    keep = _rand(batch.x.shape[1], generator, batch.x.device) >= p
    return _replace(batch, x=batch.x * keep.to(batch.x.dtype))


def mask_node_attributes(batch: Any, ratio: float, generator: torch.Generator) -> Any:
    """Replace the features of a ``ratio`` share of nodes by N(0.5, 0.5) noise (GraphCL ``mask_nodes``)."""
    x = batch.x.float()
    masked = (_rand(x.shape[0], generator, x.device) < ratio)[:, None]
    noise = 0.5 + 0.5 * torch.randn(x.shape, generator=generator, device=x.device)
    return _replace(batch, x=torch.where(masked, noise, x))


def keep_nodes(batch: Any, keep: Tensor) -> Any:
    """The subgraph induced by a boolean node mask, keeping ``batch``/``ptr`` consistent."""
    graph_ids, num_graphs = _graph_ids(batch)
    idx = keep.nonzero().flatten()
    edge_index, _ = subgraph(idx, batch.edge_index, relabel_nodes=True, num_nodes=batch.x.shape[0])
    if getattr(batch, "ptr", None) is None:
        return _replace(batch, x=batch.x[idx], edge_index=edge_index, num_nodes=idx.numel())
    new_ids = graph_ids[idx]
    counts = torch.bincount(new_ids, minlength=num_graphs)
    ptr = torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])
    out = Batch(x=batch.x[idx], edge_index=edge_index, batch=new_ids, ptr=ptr)
    out._num_graphs = num_graphs
    return out


def _one_per_graph(batch: Any, generator: torch.Generator) -> Tensor:
    """A boolean node mask with exactly one random node of each graph (so no graph becomes empty)."""
    graph_ids, num_graphs = _graph_ids(batch)
    score = _rand(graph_ids.shape[0], generator, graph_ids.device)
    best = scatter(score, graph_ids, dim=0, dim_size=num_graphs, reduce="max")
    return score == best[graph_ids]


def drop_nodes(batch: Any, ratio: float, generator: torch.Generator) -> Any:
    """Remove a ``ratio`` share of nodes and their edges; one node per graph always stays (GraphCL ``drop_nodes``)."""
    keep = (_rand(batch.x.shape[0], generator, batch.x.device) >= ratio) | _one_per_graph(batch, generator)
    return keep_nodes(batch, keep)


def perturb_edges(batch: Any, ratio: float, generator: torch.Generator) -> Any:
    """Drop a ``ratio`` share of edges and add as many random edges inside the same graphs (GraphCL ``permute_edges``)."""
    device = batch.x.device
    e = batch.edge_index.shape[1]
    kept = batch.edge_index[:, _rand(e, generator, device) >= ratio]
    num_add = int(ratio * e)
    graph_ids, num_graphs = _graph_ids(batch)
    n = batch.x.shape[0]
    u = torch.randint(n, (num_add,), generator=generator, device=device)
    counts = torch.bincount(graph_ids, minlength=num_graphs)
    starts = torch.cumsum(counts, 0) - counts
    g = graph_ids[u]
    v = starts[g] + (_rand(num_add, generator, device) * counts[g]).long()
    return _replace(batch, edge_index=torch.cat([kept, torch.stack([u, v])], dim=1))


def khop_subgraph(batch: Any, hops: int, generator: torch.Generator) -> Any:
    """Keep the nodes within ``hops`` of one random seed node per graph (GraphCL's ``subgraph``).

    Departure: GraphCL grows a subgraph from a seed by random neighbour expansion to a fixed share of the
    nodes; a k-hop ball from a random seed is the batched equivalent used here.
    """
    reached = _one_per_graph(batch, generator)
    src, dst = batch.edge_index
    for _ in range(hops):
        reached = reached | scatter(reached[src].float(), dst, dim=0, dim_size=reached.shape[0], reduce="max").bool()
    return keep_nodes(batch, reached)
