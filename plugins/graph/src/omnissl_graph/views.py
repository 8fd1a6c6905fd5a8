"""Contrastive view generators: GRACE's two corrupted views of a graph and GraphCL's augmentation pairs."""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field

from omnissl.interfaces import ViewGenerator, Views
from omnissl.specs import ComponentConfig
from omnissl_graph import augment
from omnissl_graph.masking import AttributeMasking, AttributeMaskingConfig


class GRACEViewsConfig(ComponentConfig):
    """Edge-drop and feature-mask rates of GRACE's two views; defaults are GRACE's Cora ``config.yaml``.

    Attributes: ``drop_edge_1`` (0.2), ``drop_edge_2`` (0.4), ``drop_feature_1`` (0.3), ``drop_feature_2`` (0.4).
    """

    drop_edge_1: float = Field(0.2, ge=0, lt=1)
    drop_edge_2: float = Field(0.4, ge=0, lt=1)
    drop_feature_1: float = Field(0.3, ge=0, lt=1)
    drop_feature_2: float = Field(0.4, ge=0, lt=1)


class GRACEViews(ViewGenerator):
    """Two views: ``view_k = mask_feature_columns(drop_edges(g, pe_k), pf_k)`` (GRACE section 3.2)."""

    def __init__(self, cfg: GRACEViewsConfig):
        super().__init__()
        self.cfg = cfg

    def forward(self, batch: Any, generator: torch.Generator) -> Views:
        c = self.cfg
        views = [
            augment.mask_feature_columns(augment.drop_edges(batch, pe, generator), pf, generator)
            for pe, pf in ((c.drop_edge_1, c.drop_feature_1), (c.drop_edge_2, c.drop_feature_2))
        ]
        return Views(inputs=views, original=batch)


Augmentation = Literal["node_drop", "edge_perturb", "attr_mask", "subgraph", "random"]
AUGMENTATIONS = augment.GRAPHCL_AUGMENTATIONS


class GraphCLViewsConfig(ComponentConfig):
    """GraphCL's augmentation pair.

    Attributes:
        aug_1, aug_2: ``node_drop``, ``edge_perturb``, ``attr_mask``, ``subgraph`` or ``random`` (one of the
            four drawn for each graph and each view, GraphCL's ``random4``). Defaults ``random``.
        ratio: share of nodes/edges altered (0.2, GraphCL's ``aug_ratio``).
        subgraph_hops: radius of the k-hop subgraph (2).
    """

    aug_1: Augmentation = "random"
    aug_2: Augmentation = "random"
    ratio: float = Field(0.2, ge=0, lt=1)
    subgraph_hops: int = Field(2, ge=1)


class GraphCLViews(ViewGenerator):
    """Two augmented views of a batch of graphs (:func:`omnissl_graph.augment.graphcl_augment`).

    ``info["augmentations"]``: ``(2, G)`` long, the index in ``AUGMENTATIONS`` that each graph got in each view,
    drawn on the device (GraphCL draws per graph, in its dataset's ``__getitem__``).
    """

    def __init__(self, cfg: GraphCLViewsConfig):
        super().__init__()
        self.cfg = cfg

    def forward(self, batch: Any, generator: torch.Generator) -> Views:
        _, num_graphs = augment.graph_index(batch)
        device = batch.x.device
        choices = torch.stack([
            torch.randint(len(AUGMENTATIONS), (num_graphs,), generator=generator, device=device) if aug == "random"
            else torch.full((num_graphs,), AUGMENTATIONS.index(aug), device=device)
            for aug in (self.cfg.aug_1, self.cfg.aug_2)
        ])
        views = [augment.graphcl_augment(batch, c, self.cfg.ratio, self.cfg.subgraph_hops, generator) for c in choices]
        return Views(inputs=views, original=batch, info={"augmentations": choices})


class MultiPretextViewsConfig(ComponentConfig):
    """GraphMAE masking and GRACE's pair in one step (the ParetoGNN recipe): ``masking`` and ``contrastive``."""

    masking: AttributeMaskingConfig = Field(default_factory=AttributeMaskingConfig)
    contrastive: GRACEViewsConfig = Field(default_factory=GRACEViewsConfig)


class MultiPretextViews(ViewGenerator):
    """Views for ``core.multi`` over GraphMAE + GRACE + link reconstruction on one encoder.

    ``inputs[0]`` and the mask indices are those of ``graph.attribute_masking``; ``info["contrastive_views"]``
    holds GRACE's two views; ``original`` is the graph (link reconstruction reads it).
    """

    def __init__(self, cfg: MultiPretextViewsConfig):
        super().__init__()
        self.masking = AttributeMasking(cfg.masking)
        self.contrastive = GRACEViews(cfg.contrastive)

    def forward(self, batch: Any, generator: torch.Generator) -> Views:
        masked = self.masking(batch, generator)
        pair = self.contrastive(batch, generator)
        return Views(inputs=masked.inputs, original=batch, info={**masked.info, "contrastive_views": pair.inputs})
