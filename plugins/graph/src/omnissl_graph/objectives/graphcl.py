"""GraphCL: graph-level contrastive learning with augmentations, NT-Xent on pooled embeddings.

Reference: You et al., "Graph Contrastive Learning with Augmentations", NeurIPS 2020, eq. (3); official
code github.com/Shen-Lab/GraphCL ``unsupervised_TU/gsimclr.py`` (projection ``Linear -> ReLU -> Linear``,
temperature 0.2). Departure: the official loss uses only inter-view negatives in one direction; here the
core's :class:`omnissl.losses.ntxent.NTXentLoss` (SimCLR's symmetric form, negatives gathered across
processes) is used.
"""

from __future__ import annotations

from pydantic import Field
from torch import nn

from omnissl.interfaces import Encoder, Objective, ObjectiveOutput, Views
from omnissl.losses.ntxent import NTXentLoss
from omnissl.specs import BuildContext, ComponentConfig


class GraphCLConfig(ComponentConfig):
    """``temperature`` (0.2, GraphCL) and the projection width ``proj_dim`` (``None``: the encoder width)."""

    temperature: float = Field(0.2, gt=0)
    proj_dim: int | None = Field(None, gt=0)


class GraphCLObjective(Objective):
    """Two augmented views -> pooled graph embeddings ``(G, D)`` -> projection -> NT-Xent."""

    def __init__(self, enc_dim: int, cfg: GraphCLConfig):
        super().__init__()
        proj = cfg.proj_dim or enc_dim
        self.projector = nn.Sequential(nn.Linear(enc_dim, proj), nn.ReLU(inplace=True), nn.Linear(proj, proj))
        self.loss = NTXentLoss(cfg.temperature)

    def forward(self, encoder: Encoder, views: Views) -> ObjectiveOutput:
        if len(views.inputs) != 2:
            raise ValueError(f"GraphCL needs two views (graph.graphcl_views), got {len(views.inputs)}")
        z1, z2 = (self.projector(encoder(v).pooled) for v in views.inputs)
        loss = self.loss(z1, z2)
        return ObjectiveOutput(loss=loss, logs={"ntxent": loss.detach()})

    @classmethod
    def build(cls, cfg: GraphCLConfig, ctx: BuildContext) -> GraphCLObjective:
        return cls(ctx.encoder.output_dim, cfg)
