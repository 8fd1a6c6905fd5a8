"""CrossVideoMAE: a video MAE with a frame (image) branch and intra- and cross-modal contrastive alignment.

Reference: Ahamed et al., "CrossVideoMAE: Self-Supervised Image-Video Representation Learning with Masked
Autoencoders", 2025 (arXiv 2502.07811). No official code could be read for this implementation (none is
in the reference index), so it follows the paper's description; every choice below that the paper leaves
open is named in ``docs/domains/video.md``.

Per step, with ``video.masked_augment`` views (two augmented, tube-masked views of each clip and one
random frame index per clip):

1. **video branch**: VideoMAE on both views: the encoder sees the visible tubes, the decoder reconstructs
   the normalised pixels of the masked ones (MSE, as ``video.videomae``);
2. **frame branch**: the sampled frame of view 1, repeated ``tubelet`` times so that it is one temporal
   slot of tubes, is masked with view 1's spatial mask and encoded by the *same* encoder (the paper uses
   an image MAE; here one encoder learns both, so nothing pretrained is needed), and an image decoder
   reconstructs its masked patches (MSE on normalised pixels);
3. **intra-modal** alignment: NT-Xent between the two video views' pooled visible-token features (after
   a projector), the core's :class:`omnissl.losses.NTXentLoss`;
4. **cross-modal** alignment: NT-Xent between each video view's features and the frame's features.

``loss = mae_video + mae_frame + intra_weight * intra + cross_weight * cross``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import repeat
from pydantic import Field
from torch import Tensor

from omnissl.interfaces import Encoder, Objective, ObjectiveOutput, Views
from omnissl.losses import NTXentLoss
from omnissl.nn import MLPHead, gather_tokens
from omnissl.specs import BuildContext, ComponentConfig
from omnissl_video.objectives.decoder import normalized_patch_targets
from omnissl_video.objectives.videomae import decoder_for


class CrossVideoMAEConfig(ComponentConfig):
    """CrossVideoMAE settings.

    Attributes:
        decoder_dim, decoder_depth, decoder_heads: the video and frame decoders (as ``video.videomae``).
        proj_hidden, proj_dim: the contrastive projector (default 512 -> 128).
        temperature: NT-Xent temperature (default 0.1).
        intra_weight, cross_weight: weights of the intra- and cross-modal terms (default 1.0 each).
        frame_weight: weight of the frame reconstruction (default 1.0).
    """

    decoder_dim: int | None = Field(None, gt=0)
    decoder_depth: int = Field(4, ge=0)
    decoder_heads: int | None = Field(None, gt=0)
    proj_hidden: int = Field(512, gt=0)
    proj_dim: int = Field(128, gt=0)
    temperature: float = Field(0.1, gt=0)
    intra_weight: float = Field(1.0, ge=0)
    cross_weight: float = Field(1.0, ge=0)
    frame_weight: float = Field(1.0, ge=0)


def frame_clip(clips: Tensor, frame: Tensor, tubelet: int) -> Tensor:
    """One frame per clip repeated over one tubelet: ``(B, C, T, H, W)``, ``(B,)`` -> ``(B, C, tubelet, H, W)``."""
    index = frame.view(-1, 1, 1, 1, 1).expand(-1, clips.shape[1], 1, clips.shape[3], clips.shape[4])
    return repeat(torch.gather(clips, 2, index), "b c 1 h w -> b c t h w", t=tubelet)


class CrossVideoMAEObjective(Objective):
    """Video MAE + frame MAE + intra/cross-modal NT-Xent; needs ``video.vit`` and ``video.masked_augment``.

    Shapes:
        views ``(B, C, T, H, W)`` x 2; frame clips ``(B, C, tubelet, H, W)`` (``h * w`` tokens, the first
        temporal slot of the position table); projections ``(B, proj_dim)``.
    Multi-process: NT-Xent gathers negatives across processes with gradients (the core loss); the MAE
        terms are local means.
    """

    def __init__(self, encoder: Encoder, cfg: CrossVideoMAEConfig):
        super().__init__()
        self.cfg = cfg
        self.tubelet, self.patch = encoder.tubelet_size, encoder.patch_size
        self.video_decoder = decoder_for(encoder, encoder.patch_dim, cfg.decoder_dim, cfg.decoder_depth, cfg.decoder_heads)
        self.frame_decoder = decoder_for(encoder, encoder.patch_dim, cfg.decoder_dim, cfg.decoder_depth, cfg.decoder_heads)
        self.projector = MLPHead(encoder.output_dim, cfg.proj_hidden, cfg.proj_dim)
        self.contrastive = NTXentLoss(cfg.temperature)

    @classmethod
    def build(cls, cfg: CrossVideoMAEConfig, ctx: BuildContext) -> CrossVideoMAEObjective:
        return cls(ctx.encoder, cfg)

    def _mae(self, encoder: Encoder, decoder, clips: Tensor, keep: Tensor, masked: Tensor) -> tuple[Tensor, Tensor]:
        encoded = encoder(clips, keep=keep)
        prediction = decoder(encoded.tokens, keep, masked)
        target = gather_tokens(normalized_patch_targets(clips, self.tubelet, self.patch), masked)
        return F.mse_loss(prediction.float(), target), encoded.pooled

    def forward(self, encoder: Encoder, views: Views) -> ObjectiveOutput:
        if len(views.inputs) < 2:
            raise ValueError("video.crossvideomae needs two views per clip: use views: {name: video.masked_augment, num_views: 2}")
        info = views.info
        t = info["grid"][0]
        mae_video, pooled = 0.0, []
        for clips, keep, masked in zip(views.inputs[:2], info["keep"][:2], info["masked"][:2]):
            loss, feats = self._mae(encoder, self.video_decoder, clips, keep, masked)
            mae_video = mae_video + loss / 2
            pooled.append(feats)
        # the tube mask is the same in every temporal slot, so its first slot is the frame's spatial mask
        frame_keep = info["keep"][0][:, : info["keep"][0].shape[1] // t]
        frame_masked = info["masked"][0][:, : info["masked"][0].shape[1] // t]
        frames = frame_clip(views.inputs[0], info["frame"], self.tubelet)
        mae_frame, frame_feats = self._mae(encoder, self.frame_decoder, frames, frame_keep, frame_masked)
        z_a, z_b, z_f = (self.projector(x) for x in (*pooled, frame_feats))
        intra = self.contrastive(z_a, z_b)
        cross = (self.contrastive(z_a, z_f) + self.contrastive(z_b, z_f)) / 2
        cfg = self.cfg
        loss = mae_video + cfg.frame_weight * mae_frame + cfg.intra_weight * intra + cfg.cross_weight * cross
        logs = {"mae_video": mae_video.detach(), "mae_frame": mae_frame.detach(), "intra": intra.detach(), "cross": cross.detach()}
        return ObjectiveOutput(loss=loss, logs=logs)
