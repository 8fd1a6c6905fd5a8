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


def graph_index(batch: Any) -> tuple[Tensor, int]:
    """``(N,)`` the graph of each node and the number of graphs, for a ``Batch`` or a single ``Data``."""
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
    graph_ids, num_graphs = graph_index(batch)
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
    graph_ids, num_graphs = graph_index(batch)
    score = _rand(graph_ids.shape[0], generator, graph_ids.device)
    best = scatter(score, graph_ids, dim=0, dim_size=num_graphs, reduce="max")
    return score == best[graph_ids]


def drop_nodes(batch: Any, ratio: float, generator: torch.Generator) -> Any:
    """Remove a ``ratio`` share of nodes and their edges; one node per graph always stays (GraphCL ``drop_nodes``)."""
    keep = (_rand(batch.x.shape[0], generator, batch.x.device) >= ratio) | _one_per_graph(batch, generator)
    return keep_nodes(batch, keep)


def rank_within_graph(group: Tensor, num_groups: int, generator: torch.Generator, first: Tensor | None = None) -> Tensor:
    """A uniformly random rank (0, 1, ...) of each element inside its group, e.g. nodes or edges inside their
    graph; elements with ``first`` set rank before the others of their group. ``group`` need not be sorted.

    ``rank < k[group]`` then picks exactly ``k[g]`` random elements of every group in one fixed-shape pass,
    which is how the official per-graph ``np.random.choice(n, int(ratio * n))`` calls are batched here.
    """
    n = group.shape[0]
    order = torch.argsort(torch.rand(n, generator=generator, device=group.device))
    key = group * 2 if first is None else group * 2 + (~first).long()
    order = order[torch.argsort(key[order], stable=True)]
    rank = torch.empty_like(order)
    rank[order] = torch.arange(n, device=group.device)
    sizes = torch.bincount(group, minlength=num_groups)
    return rank - (torch.cumsum(sizes, 0) - sizes)[group]


def perturb_edges(batch: Any, ratio: float, generator: torch.Generator) -> Any:
    """Drop a ``ratio`` share of edges and add as many random edges inside the same graphs (GraphCL ``permute_edges``)."""
    _, num_graphs = graph_index(batch)
    return graphcl_augment(batch, torch.full((num_graphs,), GRAPHCL_AUGMENTATIONS.index("edge_perturb"), device=batch.x.device),
                           ratio, 1, generator)


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


GRAPHCL_AUGMENTATIONS = ("node_drop", "edge_perturb", "attr_mask", "subgraph")


def graphcl_augment(batch: Any, choice: Tensor, ratio: float, hops: int, generator: torch.Generator) -> Any:
    """GraphCL's augmentation drawn per graph: graph ``g`` gets ``GRAPHCL_AUGMENTATIONS[choice[g]]``.

    The official code augments each graph in the dataset's ``__getitem__`` (``random4`` draws one of the four
    per graph). Here all four are computed as masks over the whole batch and each graph takes its own, so the
    choice never leaves the device; the only data-dependent shapes are the final compaction of the kept nodes
    and edges, as in every augmentation that removes nodes or edges.

    - ``node_drop``: ``int(ratio * n_g)`` random nodes and their edges removed (``drop_nodes``);
    - ``edge_perturb``: ``int(ratio * E_g)`` random edges removed and as many random node pairs of the graph
      added (``permute_edges``);
    - ``attr_mask``: ``int(ratio * n_g)`` nodes get N(0.5, 0.5) features (``mask_nodes``);
    - ``subgraph``: the nodes within ``hops`` of one random seed node (see :func:`khop_subgraph`).

    Shapes: ``choice`` ``(G,)`` long in ``[0, 4)``; the output has the same ``G`` graphs, each non-empty.
    """
    device = batch.x.device
    graph_ids, num_graphs = graph_index(batch)
    node_aug = choice[graph_ids]
    counts = torch.bincount(graph_ids, minlength=num_graphs)
    node_rank = rank_within_graph(graph_ids, num_graphs, generator)
    picked = node_rank < (ratio * counts).long()[graph_ids]  # int(ratio * n) < n: a graph keeps a node
    x = batch.x.float()
    noise = 0.5 + 0.5 * torch.randn(x.shape, generator=generator, device=device)
    x = torch.where((picked & (node_aug == 2))[:, None], noise, x)
    reached = _one_per_graph(batch, generator)
    src, dst = batch.edge_index
    for _ in range(hops):
        reached = reached | scatter(reached[src].float(), dst, dim=0, dim_size=reached.shape[0], reduce="max").bool()
    keep_node = torch.where(node_aug == 0, ~picked, torch.where(node_aug == 3, reached, torch.ones_like(picked)))
    edge_graph = graph_ids[src]
    num_edges = torch.bincount(edge_graph, minlength=num_graphs)
    n_perm = (ratio * num_edges).long()
    edge_perturbed = choice[edge_graph] == 1
    edge_rank = rank_within_graph(edge_graph, num_graphs, generator)
    keep_edge = ~edge_perturbed | (edge_rank >= n_perm[edge_graph])
    # one candidate pair per edge slot of its graph; the first n_perm of each perturbed graph are added
    size, start = counts[edge_graph], (torch.cumsum(counts, 0) - counts)[edge_graph]
    u = start + (torch.rand(src.shape, generator=generator, device=device) * size).long()
    v = start + (torch.rand(src.shape, generator=generator, device=device) * size).long()
    add = edge_perturbed & (rank_within_graph(edge_graph, num_graphs, generator) < n_perm[edge_graph])
    edge_index = torch.cat([batch.edge_index[:, keep_edge], torch.stack([u[add], v[add]])], dim=1)
    return keep_nodes(_replace(batch, x=x, edge_index=edge_index), keep_node)
