"""BYOL: an online network predicts an EMA target network's projection of the other view.

Reference: Grill et al., "Bootstrap Your Own Latent", NeurIPS 2020: projector and predictor are
Linear-BN-ReLU-Linear (paper widths 4096 -> 256); target momentum
``tau = 1 - (1 - tau_base)(cos(pi k / K) + 1) / 2`` from 0.996 to 1; symmetric loss over both views.
"""

from __future__ import annotations

import torch
from pydantic import Field

from omnissl.interfaces import Encoder, Objective, ObjectiveOutput, Progress, Views
from omnissl.losses.byol import BYOLLoss
from omnissl.nn import EMATeacher, MLPHead, momentum_schedule
from omnissl.objectives._views import remember_student, two_views
from omnissl.specs import BuildContext, ComponentConfig


class BYOLConfig(ComponentConfig):
    """``hidden_dim`` (512; paper 4096), ``proj_dim`` (128; paper 256), ``pred_hidden_dim`` (512),
    ``momentum`` (0.996) rising to ``momentum_final`` (1.0) on a cosine schedule."""

    hidden_dim: int = Field(512, gt=0)
    proj_dim: int = Field(128, gt=0)
    pred_hidden_dim: int = Field(512, gt=0)
    momentum: float = Field(0.996, ge=0, le=1)
    momentum_final: float = Field(1.0, ge=0, le=1)


class BYOLObjective(Objective):
    """Online encoder + projector + predictor; EMA teacher of encoder + projector (built from ``ctx.encoder``)."""

    def __init__(self, encoder: Encoder, cfg: BYOLConfig):
        super().__init__()
        self.cfg = cfg
        self.projector = MLPHead(encoder.output_dim, cfg.hidden_dim, cfg.proj_dim, num_layers=2)
        self.predictor = MLPHead(cfg.proj_dim, cfg.pred_hidden_dim, cfg.proj_dim, num_layers=2)
        self.teacher_encoder = EMATeacher(encoder)
        self.teacher_projector = EMATeacher(self.projector)
        self.loss = BYOLLoss()

    def forward(self, encoder: Encoder, views: Views) -> ObjectiveOutput:
        first, second = two_views(views, "BYOL")
        remember_student(self, encoder)
        p_a = self.predictor(self.projector(encoder(first).pooled))
        p_b = self.predictor(self.projector(encoder(second).pooled))
        with torch.no_grad():
            t_a = self.teacher_projector(self.teacher_encoder(first).pooled)
            t_b = self.teacher_projector(self.teacher_encoder(second).pooled)
        loss = self.loss(p_a, t_b) + self.loss(p_b, t_a)
        return ObjectiveOutput(loss=loss, logs={"byol": loss.detach()})

    def after_step(self, progress: Progress) -> None:
        student = self.__dict__.get("_student")
        if student is None:
            return
        m = momentum_schedule(self.cfg.momentum, self.cfg.momentum_final, progress.fraction, "cosine")
        self.teacher_encoder.update(student, m)
        self.teacher_projector.update(self.projector, m)

    @classmethod
    def build(cls, cfg: BYOLConfig, ctx: BuildContext) -> BYOLObjective:
        return cls(ctx.encoder, cfg)
