"""D-SLA's graded graph perturbations with exact edit distances, as a view generator.

Reference: Kim et al., "Graph Self-supervised Learning with Accurate Discrepancy Learning" (D-SLA),
NeurIPS 2022, section 3.1, and the official code github.com/DongkiKim95/D-SLA
``linkPrediction_TU/pretrain_DSLA.py`` (``DSLAPerturbation``):

- every candidate, the original included, has the attributes of ``int(mask_strength * n)`` of its nodes
  masked (``attr_mask``; official ``mask_strength`` 0.2);
- the ``k``-th perturbation removes ``m_k`` existing edges and adds ``m_k`` edges that are *not* edges of
  the graph and not self-loops (``edge_pert``), so the edit distance is exactly the number of edits.

Edges are directed entries of ``edge_index``, as in the official code (removing ``(u, v)`` keeps ``(v, u)``).
The recorded distance is the size of the symmetric difference of the two directed edge sets; this holds
when the input's ``edge_index`` has no duplicate entries (PyG's TU graphs and ``coalesce`` output do not).

Written by hand because no library samples per-graph non-edges for a whole batch at once:
``torch_geometric.utils.negative_sampling`` with ``batch=`` draws non-edges per graph, but it samples on the
host, does not guarantee the requested count, and returns duplicates. Here every step is a fixed-shape
device op except the final compaction of the kept/added edges (the graph's size is data).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from pydantic import Field
from torch import Tensor

from omnissl.interfaces import ViewGenerator, Views
from omnissl.specs import ComponentConfig
from omnissl_graph.augment import graph_index, rank_within_graph

# non-edge candidates drawn per existing edge and per node; in a graph of density d a candidate is a non-edge
# with probability ~(1 - d), so 4 (E + N) candidates leave a shortfall only in near-complete graphs
_CANDIDATES_PER_SLOT = 4


class GradedPerturbationConfig(ComponentConfig):
    """D-SLA's candidates.

    Attributes:
        strengths: one perturbed view per entry; view ``k`` removes ``m_k = max(1, int(s_k * E))`` of a
            graph's ``E`` edges and adds ``m_k`` non-edges ([0.1, 0.2, 0.3]: the official
            ``edge_pert_strength`` 0.1 times ``k`` for ``num_candidates`` 4).
        mask_strength: share of each graph's nodes whose attributes are zeroed in every candidate, the
            original included (0.2, official ``mask_strength``; 0 turns masking off).
    """

    strengths: list[float] = Field(default_factory=lambda: [0.1, 0.2, 0.3], min_length=1)
    mask_strength: float = Field(0.2, ge=0, lt=1)


def mask_attributes(batch: Any, strength: float, generator: torch.Generator) -> Any:
    """Zero the features of ``int(strength * n_g)`` random nodes of every graph (D-SLA ``attr_mask``).

    The official code sets a masked node's atom type to an extra [MASK] type with its own learned embedding;
    on dense features the zero vector plays that role (the first layer maps it to its bias).
    """
    if strength == 0:
        return batch
    graph_ids, num_graphs = graph_index(batch)
    counts = torch.bincount(graph_ids, minlength=num_graphs)
    masked = rank_within_graph(graph_ids, num_graphs, generator) < (strength * counts).long()[graph_ids]
    out = copy.copy(batch)
    out.x = batch.x.masked_fill(masked[:, None], 0)
    return out


def _sample_non_edges(edge_index: Tensor, graph_ids: Tensor, num_graphs: int, n_add: Tensor,
                      generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Up to ``n_add[g]`` distinct pairs per graph that are neither edges nor self-loops.

    Returns ``(2, A)`` pairs and ``(G,)`` how many were drawn per graph (``< n_add`` only where the graph had
    too few non-edges among the candidates, e.g. a complete graph).
    """
    device = edge_index.device
    n = graph_ids.shape[0]
    counts = torch.bincount(graph_ids, minlength=num_graphs)
    starts = torch.cumsum(counts, 0) - counts
    slot_graph = torch.cat([graph_ids[edge_index[0]], graph_ids]).repeat(_CANDIDATES_PER_SLOT)
    size = counts[slot_graph]
    u = starts[slot_graph] + (torch.rand(slot_graph.shape, generator=generator, device=device) * size).long()
    v = starts[slot_graph] + (torch.rand(slot_graph.shape, generator=generator, device=device) * (size - 1)).long()
    v = v + (v >= u).long()  # uniform over the graph's other nodes: never a self-loop
    key = u * n + v
    existing = torch.sort(edge_index[0] * n + edge_index[1]).values
    pos = torch.searchsorted(existing, key).clamp(max=max(existing.shape[0] - 1, 0))
    is_edge = existing[pos] == key if existing.numel() else torch.zeros_like(key, dtype=torch.bool)
    sorted_key, order = torch.sort(key, stable=True)
    repeat = torch.zeros_like(is_edge)
    repeat[order[1:]] = sorted_key[1:] == sorted_key[:-1]  # later copies of a pair are not candidates
    valid = ~is_edge & ~repeat & (size >= 2)
    take = valid & (rank_within_graph(slot_graph, num_graphs, generator, first=valid) < n_add[slot_graph])
    added = torch.bincount(slot_graph, weights=take.float(), minlength=num_graphs).long()
    return torch.stack([u[take], v[take]]), added


class GradedPerturbation(ViewGenerator):
    """Views ``[masked original, perturbed_1, ..., perturbed_K]``; ``original`` is the unmasked batch.

    ``info["edit_distance"]``: ``(K, G)`` float, the number of directed edges removed plus added, which is
    the size of the symmetric difference between each graph's edge set and its ``k``-th perturbation's.
    """

    def __init__(self, cfg: GradedPerturbationConfig):
        super().__init__()
        self.cfg = cfg

    def _perturb(self, batch: Any, strength: float, generator: torch.Generator) -> tuple[Any, Tensor]:
        graph_ids, num_graphs = graph_index(batch)
        edge_graph = graph_ids[batch.edge_index[0]]
        num_edges = torch.bincount(edge_graph, minlength=num_graphs)
        edits = torch.clamp((strength * num_edges).long(), min=1)
        n_remove = torch.minimum(edits, num_edges)
        keep = rank_within_graph(edge_graph, num_graphs, generator) >= n_remove[edge_graph]
        added_edges, n_added = _sample_non_edges(batch.edge_index, graph_ids, num_graphs, edits, generator)
        out = copy.copy(batch)
        out.edge_index = torch.cat([batch.edge_index[:, keep], added_edges], dim=1)
        return out, (n_remove + n_added).float()

    def forward(self, batch: Any, generator: torch.Generator) -> Views:
        inputs, distances = [mask_attributes(batch, self.cfg.mask_strength, generator)], []
        for s in self.cfg.strengths:
            view, dist = self._perturb(batch, s, generator)
            inputs.append(mask_attributes(view, self.cfg.mask_strength, generator))
            distances.append(dist)
        return Views(inputs=inputs, original=batch, info={"edit_distance": torch.stack(distances)})
