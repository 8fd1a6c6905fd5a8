"""SimCLR: NT-Xent on projected pooled embeddings of two views.

Reference: Chen et al., ICML 2020. Projection head: Linear-BN-ReLU-Linear (paper section 2.1).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from omnissl.interfaces import Encoder, Objective, ObjectiveOutput, Views
from omnissl.losses.ntxent import NTXentLoss
from omnissl.nn.heads import MLPHead
from omnissl.specs import BuildContext, ComponentConfig


class SimCLRConfig(ComponentConfig):
    """``temperature`` (0.5), projector ``hidden_dim`` (512), ``proj_dim`` (128), ``proj_layers`` (2) and the
    norm between its layers, ``proj_norm`` (``batch`` as in SimCLR; ``none`` for SCARF's plain MLP head)."""

    temperature: float = Field(0.5, gt=0)
    hidden_dim: int = Field(512, gt=0)
    proj_dim: int = Field(128, gt=0)
    proj_layers: int = Field(2, ge=1)
    proj_norm: Literal["batch", "layer", "none"] = "batch"


class SimCLRObjective(Objective):
    """Encode both views, project, NT-Xent. Needs a view generator that yields two views.

    Multi-process: negatives are gathered with gradients (see :class:`NTXentLoss`).
    """

    def __init__(self, encoder_dim: int, cfg: SimCLRConfig):
        super().__init__()
        norm = None if cfg.proj_norm == "none" else cfg.proj_norm
        self.projector = MLPHead(encoder_dim, cfg.hidden_dim, cfg.proj_dim, num_layers=cfg.proj_layers, norm=norm)
        self.loss = NTXentLoss(cfg.temperature)

    def forward(self, encoder: Encoder, views: Views) -> ObjectiveOutput:
        if len(views.inputs) != 2:
            raise ValueError(f"SimCLR needs exactly two views, the view generator gave {len(views.inputs)}")
        z_a, z_b = (self.projector(encoder(v).pooled) for v in views.inputs)
        loss = self.loss(z_a, z_b)
        return ObjectiveOutput(loss=loss, logs={"ntxent": loss.detach()})

    @classmethod
    def build(cls, cfg: SimCLRConfig, ctx: BuildContext) -> SimCLRObjective:
        return cls(ctx.encoder.output_dim, cfg)
