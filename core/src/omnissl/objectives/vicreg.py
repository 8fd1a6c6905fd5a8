"""VICReg objective: 3-layer expander, variance-invariance-covariance loss.

Reference: Bardes et al., ICLR 2022 (expander Linear-BN-ReLU x2 then Linear; paper width 8192).
"""

from __future__ import annotations

from pydantic import Field

from omnissl.interfaces import Encoder, Objective, ObjectiveOutput, Views
from omnissl.losses.vicreg import VICRegLoss
from omnissl.nn import MLPHead
from omnissl.objectives._views import two_views
from omnissl.specs import BuildContext, ComponentConfig


class VICRegConfig(ComponentConfig):
    """``sim_weight`` (25), ``var_weight`` (25), ``cov_weight`` (1), ``eps`` (1e-4); expander ``hidden_dim``
    (512), ``proj_dim`` (512), ``proj_layers`` (3)."""

    sim_weight: float = Field(25.0, ge=0)
    var_weight: float = Field(25.0, ge=0)
    cov_weight: float = Field(1.0, ge=0)
    eps: float = Field(1e-4, gt=0)
    hidden_dim: int = Field(512, gt=0)
    proj_dim: int = Field(512, gt=0)
    proj_layers: int = Field(3, ge=1)


class VICRegObjective(Objective):
    """Encode both views, expand, VICReg; logs the three unweighted terms."""

    def __init__(self, encoder_dim: int, cfg: VICRegConfig):
        super().__init__()
        self.projector = MLPHead(encoder_dim, cfg.hidden_dim, cfg.proj_dim, num_layers=cfg.proj_layers)
        self.loss = VICRegLoss(cfg.sim_weight, cfg.var_weight, cfg.cov_weight, cfg.eps)

    def forward(self, encoder: Encoder, views: Views) -> ObjectiveOutput:
        first, second = two_views(views, "VICReg")
        z_a, z_b = self.projector(encoder(first).pooled), self.projector(encoder(second).pooled)
        inv, var, cov = self.loss.terms(z_a, z_b)
        loss = self.loss.sim_weight * inv + self.loss.var_weight * var + self.loss.cov_weight * cov
        return ObjectiveOutput(loss=loss, logs={"invariance": inv.detach(), "variance": var.detach(), "covariance": cov.detach()})

    @classmethod
    def build(cls, cfg: VICRegConfig, ctx: BuildContext) -> VICRegObjective:
        return cls(ctx.encoder.output_dim, cfg)
