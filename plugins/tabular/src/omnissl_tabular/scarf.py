"""``tabular.scarf``: contrastive learning between a row and its randomly corrupted copy.

Reference: Bahri et al., "SCARF: Self-Supervised Contrastive Learning using Random Feature Corruption",
ICLR 2022. The encoder's pooled output goes through a pretraining head ``g`` (an MLP, the paper's 2 layers
of 256 units) and NT-Xent (:class:`omnissl.losses.ntxent.NTXentLoss`) pulls the clean anchor and its
corrupted view together against the other rows of the batch. Views: ``tabular.marginal_corruption`` with
``keep_clean: true`` and ``mode: exact`` (corruption rate 0.6 as in the paper).

Multi-process: negatives are gathered with gradients across processes (see ``NTXentLoss``).
"""

from __future__ import annotations

from pydantic import Field

from omnissl.interfaces import Encoder, Objective, ObjectiveOutput, Views
from omnissl.losses.ntxent import NTXentLoss
from omnissl.nn import MLPHead
from omnissl.specs import BuildContext, ComponentConfig


class SCARFConfig(ComponentConfig):
    """``temperature`` (1.0, the paper's), head ``hidden_dim`` (256), ``proj_dim`` (256), ``head_layers`` (2)."""

    temperature: float = Field(1.0, gt=0)
    hidden_dim: int = Field(256, gt=0)
    proj_dim: int = Field(256, gt=0)
    head_layers: int = Field(2, ge=1)


class SCARFObjective(Objective):
    """NT-Xent between the projected clean row and its corrupted view. Shapes: two ``(B, D)`` -> scalar."""

    def __init__(self, encoder_dim: int, cfg: SCARFConfig):
        super().__init__()
        self.head = MLPHead(encoder_dim, cfg.hidden_dim, cfg.proj_dim, num_layers=cfg.head_layers, norm=None)
        self.loss = NTXentLoss(cfg.temperature)

    def forward(self, encoder: Encoder, views: Views) -> ObjectiveOutput:
        if len(views.inputs) != 2:
            raise ValueError(f"SCARF needs [clean, corrupted] views (marginal_corruption with keep_clean: true), got {len(views.inputs)}")
        anchor, positive = (self.head(encoder(v).pooled) for v in views.inputs)
        loss = self.loss(anchor, positive)
        return ObjectiveOutput(loss=loss, logs={"ntxent": loss.detach()})

    @classmethod
    def build(cls, cfg: SCARFConfig, ctx: BuildContext) -> SCARFObjective:
        return cls(ctx.encoder.output_dim, cfg)
