"""Generic JEPA: predict an EMA target encoder's latents of target tokens from context tokens.

References: Assran et al., "Self-Supervised Learning from Images with a Joint-Embedding Predictive
Architecture" (I-JEPA), CVPR 2023, section 3 and github.com/facebookresearch/ijepa (layer-normed targets,
smooth-L1 loss, predictor of mask tokens with sin-cos positions, momentum 0.996 -> 1.0 linear);
Thimonier et al., "T-JEPA", ICLR 2025 (the same recipe over tabular feature tokens, MSE).

The encoder must be token-based and honour ``keep``: ``encoder(batch, keep=context_idx).tokens`` is the
context ``(B, Kc, D)``; ``teacher(batch).tokens`` ``(B, N, D)`` the targets. The predictor predicts all
target tokens of a sample in one pass (as T-JEPA); I-JEPA's per-block passes are a view-generator matter.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from omnissl.interfaces import Encoder, Objective, ObjectiveOutput, Progress, Views
from omnissl.losses.reconstruction import latent_prediction_loss
from omnissl.nn import EMATeacher, TransformerTrunk, TrunkConfig, gather_tokens, momentum_schedule, sincos_positions
from omnissl.objectives._views import remember_student
from omnissl.specs import BuildContext, ComponentConfig


class JEPAPredictor(nn.Module):
    """Narrow transformer over context tokens plus one mask token per target position.

    Args:
        dim: encoder width ``D``. predictor_dim: ``P`` (64). depth (2), heads (4).

    Shapes:
        ``context`` ``(B, Kc, D)``, ``context_idx`` ``(B, Kc)``, ``target_idx`` ``(B, Kt)``,
        ``num_positions`` ``N`` -> ``(B, Kt, D)``.
    """

    def __init__(self, dim: int, predictor_dim: int = 64, depth: int = 2, heads: int = 4):
        super().__init__()
        self.embed = nn.Linear(dim, predictor_dim)
        self.mask_token = nn.Parameter(torch.zeros(predictor_dim))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        self.trunk = TransformerTrunk(TrunkConfig(dim=predictor_dim, depth=depth, heads=heads))
        self.project = nn.Linear(predictor_dim, dim)

    def forward(self, context: Tensor, context_idx: Tensor, target_idx: Tensor, num_positions: int) -> Tensor:
        table = sincos_positions(num_positions, self.embed.out_features, device=context.device).to(context.dtype)
        x_ctx = self.embed(context) + table[context_idx]
        x_tgt = self.mask_token + table[target_idx]
        x = self.trunk(torch.cat([x_ctx, x_tgt], dim=1))
        return self.project(x[:, context.shape[1]:])


class JEPAConfig(ComponentConfig):
    """``predictor_dim`` (64), ``predictor_depth`` (2), ``predictor_heads`` (4), ``loss`` (``smooth_l1`` |
    ``mse``; smooth_l1), ``normalize_targets`` (layer-norm target tokens, True), ``momentum`` (0.996) to
    ``momentum_final`` (1.0) on ``momentum_schedule`` (linear); ``per_block`` (True): when the views carry
    ``target_blocks`` (``core.block_masking``), predict each block in its own predictor pass from the same
    context, as I-JEPA (batched: the context is repeated once per block); otherwise all targets in one pass."""

    predictor_dim: int = Field(64, gt=0)
    predictor_depth: int = Field(2, ge=1)
    predictor_heads: int = Field(4, ge=1)
    loss: str = Field("smooth_l1", pattern="^(smooth_l1|mse)$")
    normalize_targets: bool = True
    momentum: float = Field(0.996, ge=0, le=1)
    momentum_final: float = Field(1.0, ge=0, le=1)
    momentum_schedule: str = Field("linear", pattern="^(linear|cosine|constant)$")
    per_block: bool = True


class JEPAObjective(Objective):
    """Context encoder on kept tokens, EMA target encoder on the full input, predictor over target positions."""

    def __init__(self, encoder: Encoder, cfg: JEPAConfig):
        super().__init__()
        self.cfg = cfg
        self.predictor = JEPAPredictor(encoder.output_dim, cfg.predictor_dim, cfg.predictor_depth, cfg.predictor_heads)
        self.teacher = EMATeacher(encoder)

    def forward(self, encoder: Encoder, views: Views) -> ObjectiveOutput:
        if "context_idx" not in views.info or "target_idx" not in views.info:
            raise ValueError(
                "core.jepa needs views.info['context_idx'] and ['target_idx']; use core.token_masking, core.block_masking "
                "or a domain masking generator"
            )
        context_idx, target_idx = views.info["context_idx"], views.info["target_idx"]
        remember_student(self, encoder)
        context = encoder(views.inputs[0], keep=context_idx).tokens
        if context is None:
            raise ValueError("core.jepa needs a token encoder (Encoded.tokens) that honours keep=...")
        if context.shape[1] != context_idx.shape[1]:
            raise ValueError(
                f"core.jepa: the encoder returned {context.shape[1]} tokens for {context_idx.shape[1]} kept positions; "
                "the encoder must encode only the kept tokens"
            )
        blocks = views.info.get("target_blocks") if self.cfg.per_block else None
        if blocks is not None:
            # I-JEPA: one predictor pass per target block, the blocks of a sample as extra batch rows
            num_blocks = blocks.shape[1]
            context = context.repeat_interleave(num_blocks, dim=0)
            context_idx = context_idx.repeat_interleave(num_blocks, dim=0)
            target_idx = blocks.reshape(-1, blocks.shape[2])
        with torch.no_grad():
            full = self.teacher(views.original if views.original is not None else views.inputs[0]).tokens
            if self.cfg.normalize_targets:
                full = F.layer_norm(full.float(), full.shape[-1:])
            if blocks is None:
                target = gather_tokens(full, target_idx)
            else:
                target = gather_tokens(full, blocks.flatten(1)).reshape(target_idx.shape[0], target_idx.shape[1], -1)
        pred = self.predictor(context, context_idx, target_idx, full.shape[1])
        loss = latent_prediction_loss(pred, target, self.cfg.loss)
        return ObjectiveOutput(loss=loss, logs={"jepa": loss.detach()})

    def after_step(self, progress: Progress) -> None:
        student = self.__dict__.get("_student")
        if student is not None:
            m = momentum_schedule(self.cfg.momentum, self.cfg.momentum_final, progress.fraction, self.cfg.momentum_schedule)
            self.teacher.update(student, m)

    @classmethod
    def build(cls, cfg: JEPAConfig, ctx: BuildContext) -> JEPAObjective:
        return cls(ctx.encoder, cfg)
