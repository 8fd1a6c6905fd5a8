"""VideoMAE: masked autoencoding of video tubes with an asymmetric encoder and decoder.

Reference: Tong et al., "VideoMAE: Masked Autoencoders are Data-Efficient Learners for Self-Supervised
Video Pre-Training", NeurIPS 2022; official code github.com/MCG-NJU/VideoMAE. Per step:

1. ``video.tube_masking`` hides ``ratio`` (0.9) of the tubes, the same spatial patches in every frame;
2. the encoder encodes the visible tubes only (``keep=``);
3. :class:`~omnissl_video.objectives.decoder.MAEDecoder` (half the encoder width, 4 blocks) predicts the
   masked tubes from the visible tokens and [MASK] tokens;
4. the loss is the MSE between the predictions and the per-tube normalised pixels
   (:func:`~omnissl_video.objectives.decoder.normalized_patch_targets`) of the *masked* tubes only.
"""

from __future__ import annotations

import torch.nn.functional as F
from pydantic import Field

from omnissl.interfaces import Encoder, Objective, ObjectiveOutput, Views
from omnissl.nn import gather_tokens
from omnissl.specs import BuildContext, ComponentConfig
from omnissl_video.objectives.decoder import MAEDecoder, normalized_patch_targets


class VideoMAEConfig(ComponentConfig):
    """VideoMAE head settings (official defaults).

    Attributes:
        decoder_dim: decoder width; ``None`` = half the encoder's (VideoMAE: 192 for ViT-S, 384 for ViT-B).
        decoder_depth: decoder blocks (default 4). decoder_heads: ``None`` = ``decoder_dim // 64`` (at least 1).
        normalize_target: per-tube normalised pixels (default ``True``, ``--normlize_target``).
    """

    decoder_dim: int | None = Field(None, gt=0)
    decoder_depth: int = Field(4, ge=0)
    decoder_heads: int | None = Field(None, gt=0)
    normalize_target: bool = True


def decoder_for(encoder: Encoder, out_dim: int, dim: int | None, depth: int, heads: int | None) -> MAEDecoder:
    """An :class:`MAEDecoder` sized from the encoder (half its width, heads of 64 channels by default)."""
    dim = dim or max(32, encoder.output_dim // 2)
    heads = heads or max(1, dim // 64)
    while dim % heads:
        heads -= 1
    return MAEDecoder(encoder.output_dim, out_dim, encoder.num_tokens, dim=dim, depth=depth, heads=heads)


class VideoMAEObjective(Objective):
    """MSE on the normalised pixels of masked tubes; needs ``video.vit`` and ``video.tube_masking``.

    Shapes:
        clips ``(B, C, T, H, W)``; visible tokens ``(B, K, D)``; predictions and targets ``(B, M, pt*p*p*C)``.
    Multi-process: the loss is a mean over local masked tubes; DDP averages gradients across processes.
    """

    def __init__(self, encoder: Encoder, cfg: VideoMAEConfig):
        super().__init__()
        self.cfg = cfg
        self.tubelet, self.patch = encoder.tubelet_size, encoder.patch_size
        self.decoder = decoder_for(encoder, encoder.patch_dim, cfg.decoder_dim, cfg.decoder_depth, cfg.decoder_heads)

    @classmethod
    def build(cls, cfg: VideoMAEConfig, ctx: BuildContext) -> VideoMAEObjective:
        return cls(ctx.encoder, cfg)

    def forward(self, encoder: Encoder, views: Views) -> ObjectiveOutput:
        clips = views.inputs[0]
        keep, masked = views.info["keep"], views.info["masked"]
        encoded = encoder(clips, keep=keep)
        prediction = self.decoder(encoded.tokens, keep, masked)
        target = gather_tokens(normalized_patch_targets(clips, self.tubelet, self.patch, self.cfg.normalize_target), masked)
        loss = F.mse_loss(prediction.float(), target)
        return ObjectiveOutput(loss=loss, logs={"mse": loss.detach()})
