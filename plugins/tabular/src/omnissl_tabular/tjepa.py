"""``tabular.tjepa``: predict the target encoder's latents of some features from the context of others.

Reference: Thimonier et al., "T-JEPA: Augmentation-Free Self-Supervised Learning for Tabular Data",
ICLR 2025; code github.com/jose-melo/t-jepa (``src/train.py``, ``run.py``).

Per step (with :class:`omnissl_tabular.masking.TJEPAMasking` views):

1. the EMA target encoder encodes the full row (no gradient): ``h`` ``(B, R + F, D)``;
2. the context encoder (the task's encoder) encodes the [REG] tokens and the context features only;
3. the predictor maps the context tokens and mask tokens at the target positions to ``(B, M, K_t, D)``;
4. loss = MSE between predictions and ``h`` at the target positions (``torch.nn.MSELoss`` as released);
5. after the optimizer step the target encoder moves towards the context encoder with momentum rising
   linearly from ``momentum_start`` to ``momentum_end`` over training (0.996 -> 1 as released).

The [REG] tokens (``num_reg_tokens`` of the encoder) are always part of the context and of the target
encoder's input and are never prediction targets; the paper reports they prevent collapse.

Downstream, probes read the frozen target encoder (``encoder.representation_encoder()``).

Multi-process: the loss is a per-process mean; DDP averages gradients, and the teacher update is the same
on every process because the students are identical after the all-reduce.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from omnissl.errors import ConfigError
from omnissl.interfaces import Encoder, Objective, ObjectiveOutput, Progress, Views
from omnissl.nn import EMATeacher, gather_tokens, momentum_schedule
from omnissl.specs import BuildContext, ComponentConfig
from omnissl_tabular.predictor import TJEPAPredictor


class TJEPAConfig(ComponentConfig):
    """Predictor size and EMA schedule.

    Attributes:
        pred_dim: predictor width (default 32; the release uses 16-128 per dataset).
        pred_depth: predictor blocks (default 2).
        pred_heads: predictor heads (default 4).
        pred_mlp_ratio: predictor feed-forward width over ``pred_dim`` (default 4.0).
        momentum_start / momentum_end: EMA momentum, linear over training (default 0.996 / 1.0).
    """

    pred_dim: int = Field(32, gt=0)
    pred_depth: int = Field(2, ge=1)
    pred_heads: int = Field(4, gt=0)
    pred_mlp_ratio: float = Field(4.0, gt=0)
    momentum_start: float = Field(0.996, ge=0, le=1)
    momentum_end: float = Field(1.0, ge=0, le=1)


class TJEPAObjective(Objective):
    """See the module docstring. Needs ``tabular.transformer`` and ``tabular.tjepa_masking``."""

    def __init__(self, encoder: Encoder, cfg: TJEPAConfig):
        super().__init__()
        if not hasattr(encoder, "num_reg_tokens"):
            raise ConfigError(["objective: tabular.tjepa needs the tabular.transformer encoder (token outputs with [REG] tokens)"])
        self.cfg = cfg
        self.num_reg = encoder.num_reg_tokens
        self.predictor = TJEPAPredictor(encoder.output_dim, encoder.num_tokens, cfg.pred_dim, cfg.pred_depth, cfg.pred_heads, cfg.pred_mlp_ratio)
        self.teacher = EMATeacher(encoder)
        self._student = [encoder]  # not a submodule: the engine owns the encoder
        encoder.attach_target(self.teacher.module)

    def forward(self, encoder: Encoder, views: Views) -> ObjectiveOutput:
        batch, context, targets = views.inputs[0], views.info["context"], views.info["targets"]
        b, m, k_t = targets.shape
        target_positions = targets + self.num_reg
        with torch.no_grad():
            full = self.teacher(batch).tokens  # (B, R + F, D)
            h = gather_tokens(full, target_positions.flatten(1)).unflatten(1, (m, k_t))
        z = encoder(batch, keep=context).tokens  # (B, R + K_c, D)
        reg = torch.arange(self.num_reg, device=context.device).expand(b, -1)
        prediction = self.predictor(z, torch.cat([reg, context + self.num_reg], dim=1), target_positions)
        loss = F.mse_loss(prediction.float(), h.float())
        return ObjectiveOutput(loss=loss, logs={"tjepa_mse": loss.detach(), "target_std": h.float().std(dim=0).mean().detach()})

    def after_step(self, progress: Progress) -> None:
        momentum = momentum_schedule(self.cfg.momentum_start, self.cfg.momentum_end, progress.fraction, "linear")
        self.teacher.update(self._student[0], momentum)

    @classmethod
    def build(cls, cfg: TJEPAConfig, ctx: BuildContext) -> TJEPAObjective:
        return cls(ctx.encoder, cfg)
