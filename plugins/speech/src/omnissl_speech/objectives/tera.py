"""TERA: reconstruct altered acoustic frames with an L1 loss (Liu, Li and Lee, IEEE/ACM TASLP 2021).

Reference code: s3prl ``pretrain/mockingjay/pretrain_expert.py`` (``SpecHead`` and ``L1Loss`` over the
positions selected by ``mask_label``). Pair with ``speech.tera_alteration`` views and
``speech.frame_transformer``.
"""

from __future__ import annotations

from pydantic import Field
from torch import nn

from omnissl.interfaces import Encoder, Objective, ObjectiveOutput, Views
from omnissl.specs import BuildContext, ComponentConfig


class TERAConfig(ComponentConfig):
    """``hidden_dim`` of the prediction head (default ``None``: the encoder's width, as in TERA)."""

    hidden_dim: int | None = Field(None, gt=0)


class SpecHead(nn.Module):
    """TERA's prediction head: Linear, GELU, LayerNorm, Linear to the feature bins. ``(B, T, D) -> (B, T, F)``."""

    def __init__(self, dim: int, hidden_dim: int, feature_dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden_dim), nn.GELU(), nn.LayerNorm(hidden_dim), nn.Linear(hidden_dim, feature_dim))

    def forward(self, x):
        return self.net(x)


class TERAObjective(Objective):
    """L1 between predicted and original frames, averaged over the altered (bin, frame) positions.

    Uses ``views.info["target_mask"]`` ``(B, T, F)`` from ``speech.tera_alteration``; padding is never a
    target. Logs ``l1`` (the loss) and ``altered_fraction`` (scored share of valid positions).
    """

    def __init__(self, encoder_dim: int, feature_dim: int, cfg: TERAConfig):
        super().__init__()
        self.head = SpecHead(encoder_dim, cfg.hidden_dim or encoder_dim, feature_dim)

    def forward(self, encoder: Encoder, views: Views) -> ObjectiveOutput:
        target_mask = views.info.get("target_mask")
        if target_mask is None:
            raise ValueError("speech.tera needs views with info['target_mask']; use views: {name: speech.tera_alteration}")
        out = encoder(views.inputs[0])
        target = views.original.features
        if out.tokens is None or out.tokens.shape[1] != target.shape[1]:
            raise ValueError("speech.tera reconstructs feature frames: use an encoder with one token per frame (speech.frame_transformer)")
        pred = self.head(out.tokens)
        weight = target_mask.to(pred.dtype)
        loss = ((pred - target).abs() * weight).sum() / weight.sum().clamp_min(1.0)
        valid = (~views.original.padding_mask).sum() * target.shape[-1]
        return ObjectiveOutput(loss=loss, logs={"l1": loss.detach(), "altered_fraction": (weight.sum() / valid.clamp_min(1)).detach()})

    @classmethod
    def build(cls, cfg: TERAConfig, ctx: BuildContext) -> TERAObjective:
        feature_dim = getattr(ctx.encoder, "feature_dim", None) or getattr(ctx.data, "feature_dim", None)
        if feature_dim is None:
            raise ValueError("speech.tera needs an encoder over feature frames (speech.frame_transformer)")
        return cls(ctx.encoder.output_dim, feature_dim, cfg)
