"""AMCL objective: ``C`` projection heads, pair-adaptive temperatures, SimCLR structure.

Reference: Wang et al., "Adaptive Multi-head Contrastive Learning", ECCV 2024; see
:class:`omnissl.losses.amcl.AMCLLoss` for the loss.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from omnissl.interfaces import Encoder, Objective, ObjectiveOutput, Views
from omnissl.losses.amcl import AMCLLoss
from omnissl.nn import MLPHead
from omnissl.objectives._views import two_views
from omnissl.specs import BuildContext, ComponentConfig


class AMCLConfig(ComponentConfig):
    """AMCL settings.

    Attributes:
        heads: projection heads ``C`` (3, paper). beta: temperature regulariser weight (0.01).
        tau_min (1e-5), tau_max (2.0): temperature bounds ``eta`` and ``eta + iota`` (authors' code).
        negatives: ``all`` (paper, full NT-Xent denominator; default) or ``topk`` (the authors' code's top-k
            approximation, exactly); topk: negatives kept per anchor in ``topk`` mode (100, authors' default).
        temperature_hidden_dim: width of the shared temperature MLP ``phi`` (None = ``proj_dim``).
        hidden_dim (512), proj_dim (128), proj_layers (2): each projection head.
    """

    heads: int = Field(3, ge=1)
    beta: float = Field(0.01, ge=0)
    tau_min: float = Field(1e-5, gt=0)
    tau_max: float = Field(2.0, gt=0)
    temperature_hidden_dim: int | None = Field(None, gt=0)
    negatives: str = Field("all", pattern="^(all|topk)$")
    topk: int = Field(100, ge=1)
    hidden_dim: int = Field(512, gt=0)
    proj_dim: int = Field(128, gt=0)
    proj_layers: int = Field(2, ge=1)


class AMCLObjective(Objective):
    """Encode both views once, project with every head, AMCL loss (heads summed)."""

    def __init__(self, encoder_dim: int, cfg: AMCLConfig):
        super().__init__()
        self.heads = nn.ModuleList(
            MLPHead(encoder_dim, cfg.hidden_dim, cfg.proj_dim, num_layers=cfg.proj_layers) for _ in range(cfg.heads)
        )
        self.loss = AMCLLoss(cfg.proj_dim, cfg.beta, cfg.tau_min, cfg.tau_max, cfg.temperature_hidden_dim, cfg.negatives, cfg.topk)

    def forward(self, encoder: Encoder, views: Views) -> ObjectiveOutput:
        first, second = two_views(views, "AMCL")
        h_a, h_b = encoder(first).pooled, encoder(second).pooled
        z_a = torch.stack([head(h_a) for head in self.heads], dim=1)
        z_b = torch.stack([head(h_b) for head in self.heads], dim=1)
        loss = self.loss(z_a, z_b)
        return ObjectiveOutput(loss=loss, logs={"amcl": loss.detach()})

    @classmethod
    def build(cls, cfg: AMCLConfig, ctx: BuildContext) -> AMCLObjective:
        if cfg.tau_min >= cfg.tau_max:
            raise ValueError(f"core.amcl: tau_min ({cfg.tau_min}) must be below tau_max ({cfg.tau_max})")
        return cls(ctx.encoder.output_dim, cfg)
