"""Barlow Twins objective: 3-layer projector, cross-correlation to identity.

Reference: Zbontar et al., ICML 2021 (projector Linear-BN-ReLU x2 then Linear; paper width 8192).
"""

from __future__ import annotations

from pydantic import Field

from omnissl.interfaces import Encoder, Objective, ObjectiveOutput, Views
from omnissl.losses.barlow_twins import BarlowTwinsLoss
from omnissl.nn import MLPHead
from omnissl.objectives._views import two_views
from omnissl.specs import BuildContext, ComponentConfig


class BarlowTwinsConfig(ComponentConfig):
    """``lambda_offdiag`` (0.0051); projector ``hidden_dim`` (512), ``proj_dim`` (512), ``proj_layers`` (3)."""

    lambda_offdiag: float = Field(0.0051, ge=0)
    hidden_dim: int = Field(512, gt=0)
    proj_dim: int = Field(512, gt=0)
    proj_layers: int = Field(3, ge=1)


class BarlowTwinsObjective(Objective):
    """Encode both views, project, Barlow Twins loss over the global batch."""

    def __init__(self, encoder_dim: int, cfg: BarlowTwinsConfig):
        super().__init__()
        self.projector = MLPHead(encoder_dim, cfg.hidden_dim, cfg.proj_dim, num_layers=cfg.proj_layers)
        self.loss = BarlowTwinsLoss(cfg.lambda_offdiag)

    def forward(self, encoder: Encoder, views: Views) -> ObjectiveOutput:
        first, second = two_views(views, "Barlow Twins")
        z_a, z_b = self.projector(encoder(first).pooled), self.projector(encoder(second).pooled)
        loss = self.loss(z_a, z_b)
        return ObjectiveOutput(loss=loss, logs={"barlow_twins": loss.detach()})

    @classmethod
    def build(cls, cfg: BarlowTwinsConfig, ctx: BuildContext) -> BarlowTwinsObjective:
        return cls(ctx.encoder.output_dim, cfg)
