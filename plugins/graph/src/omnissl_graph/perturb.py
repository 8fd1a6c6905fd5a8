"""D-SLA's graded graph perturbations with known edit distances, as a view generator.

Reference: Kim et al., "Graph Self-supervised Learning with Accurate Discrepancy Learning" (D-SLA),
NeurIPS 2022, section 3.1: each graph is perturbed by edge edits of increasing strength; the number of
edits is the (exact) edit distance between the original and the perturbed graph.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from pydantic import Field
from torch import Tensor

from omnissl.interfaces import ViewGenerator, Views
from omnissl.specs import ComponentConfig


class GradedPerturbationConfig(ComponentConfig):
    """``strengths``: share of each graph's edges edited per perturbed view ([0.1, 0.2, 0.3]); half of the
    edits remove existing edges and half add random ones inside the graph; at least one edit per view."""

    strengths: list[float] = Field(default_factory=lambda: [0.1, 0.2, 0.3], min_length=1)


def _graph_ids(batch: Any) -> tuple[Tensor, int]:
    ids = getattr(batch, "batch", None)
    if ids is None:
        return torch.zeros(batch.x.shape[0], dtype=torch.long, device=batch.x.device), 1
    return ids, int(batch.num_graphs)


class GradedPerturbation(ViewGenerator):
    """Views ``[original, perturbed_1, ..., perturbed_K]``.

    ``info["edit_distance"]``: ``(K, G)`` float, the number of edge edits (removed + added directed edges)
    that turned each graph into its ``k``-th perturbation.
    """

    def __init__(self, cfg: GradedPerturbationConfig):
        super().__init__()
        self.cfg = cfg

    def _perturb(self, batch: Any, strength: float, generator: torch.Generator) -> tuple[Any, Tensor]:
        device = batch.x.device
        graph_ids, num_graphs = _graph_ids(batch)
        src, dst = batch.edge_index
        edge_graph = graph_ids[src]
        num_edges = torch.bincount(edge_graph, minlength=num_graphs)
        edits = torch.clamp((strength * num_edges.float()).ceil().long(), min=1)
        n_remove = torch.minimum(edits // 2 + edits % 2, num_edges)
        n_add = edits - n_remove
        # rank each edge within its graph by a random key; remove the first n_remove of each graph
        key = torch.rand(src.shape[0], generator=generator, device=device) + edge_graph.float()
        order = torch.argsort(key)
        rank = torch.empty_like(order)
        rank[order] = torch.arange(order.numel(), device=device)
        starts = torch.cumsum(num_edges, 0) - num_edges
        keep = (rank - starts[edge_graph]) >= n_remove[edge_graph]
        counts = torch.bincount(graph_ids, minlength=num_graphs)
        node_starts = torch.cumsum(counts, 0) - counts
        add_graph = torch.repeat_interleave(torch.arange(num_graphs, device=device), n_add)
        u = node_starts[add_graph] + (torch.rand(add_graph.shape[0], generator=generator, device=device) * counts[add_graph]).long()
        v = node_starts[add_graph] + (torch.rand(add_graph.shape[0], generator=generator, device=device) * counts[add_graph]).long()
        out = copy.copy(batch)
        out.edge_index = torch.cat([batch.edge_index[:, keep], torch.stack([u, v])], dim=1)
        return out, (n_remove + n_add).float()

    def forward(self, batch: Any, generator: torch.Generator) -> Views:
        perturbed, distances = [], []
        for s in self.cfg.strengths:
            view, dist = self._perturb(batch, s, generator)
            perturbed.append(view)
            distances.append(dist)
        return Views(inputs=[batch, *perturbed], original=batch, info={"edit_distance": torch.stack(distances)})
