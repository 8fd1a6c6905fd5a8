"""SwAV objective: projector, prototypes, swapped prediction of Sinkhorn codes.

Reference: Caron et al., NeurIPS 2020 (defaults: temperature 0.1, epsilon 0.05, 3 Sinkhorn iterations;
the paper uses 3000 prototypes for ImageNet — scale ``num_prototypes`` with the data). The prototypes are
re-normalised after every step. Not included: the feature queue and multi-crop, which belong to view
generators and large-batch recipes.
"""

from __future__ import annotations

from pydantic import Field

from omnissl.interfaces import Encoder, Objective, ObjectiveOutput, Progress, Views
from omnissl.losses.swav import Prototypes, SwAVLoss
from omnissl.nn import MLPHead
from omnissl.objectives._views import two_views
from omnissl.specs import BuildContext, ComponentConfig


class SwAVConfig(ComponentConfig):
    """``num_prototypes`` (64), ``temperature`` (0.1), ``epsilon`` (0.05), ``sinkhorn_iterations`` (3);
    projector ``hidden_dim`` (512), ``proj_dim`` (128)."""

    num_prototypes: int = Field(64, ge=2)
    temperature: float = Field(0.1, gt=0)
    epsilon: float = Field(0.05, gt=0)
    sinkhorn_iterations: int = Field(3, ge=1)
    hidden_dim: int = Field(512, gt=0)
    proj_dim: int = Field(128, gt=0)


class SwAVObjective(Objective):
    """Scores of both views to the prototypes; swapped prediction of equipartitioned codes."""

    def __init__(self, encoder_dim: int, cfg: SwAVConfig):
        super().__init__()
        self.projector = MLPHead(encoder_dim, cfg.hidden_dim, cfg.proj_dim, num_layers=2)
        self.prototypes = Prototypes(cfg.proj_dim, cfg.num_prototypes)
        self.loss = SwAVLoss(cfg.temperature, cfg.epsilon, cfg.sinkhorn_iterations)

    def forward(self, encoder: Encoder, views: Views) -> ObjectiveOutput:
        first, second = two_views(views, "SwAV")
        s_a = self.prototypes(self.projector(encoder(first).pooled))
        s_b = self.prototypes(self.projector(encoder(second).pooled))
        loss = self.loss(s_a, s_b)
        return ObjectiveOutput(loss=loss, logs={"swav": loss.detach()})

    def after_step(self, progress: Progress) -> None:
        self.prototypes.normalise_()

    @classmethod
    def build(cls, cfg: SwAVConfig, ctx: BuildContext) -> SwAVObjective:
        return cls(ctx.encoder.output_dim, cfg)
