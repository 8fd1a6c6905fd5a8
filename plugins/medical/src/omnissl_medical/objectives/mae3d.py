"""Masked volume modelling: MAE (He et al., CVPR 2022) on cubic patches of a volume.

Reference code: facebookresearch/mae ``models_mae.py`` (``forward_encoder`` on visible patches only,
``forward_decoder`` with a shared learned mask token and fixed sin-cos decoder positions, ``forward_loss``
= MSE per patch averaged over masked patches, with ``norm_pix_loss`` normalising each target patch by its
own mean and variance, ``eps = 1e-6``). The decoder here is the core trunk (MAE's decoder is a ViT too),
narrower and shallower than the encoder, as in MAE ("a lightweight decoder", section 3).

Pair with ``medical.vit`` (it encodes ``keep`` only) and ``medical.patch_masking``.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor, nn

from omnissl.interfaces import Encoder, Objective, ObjectiveOutput, Views
from omnissl.nn import TransformerTrunk, TrunkConfig, gather_tokens
from omnissl.specs import BuildContext, ComponentConfig
from omnissl_medical.encoders import sincos_positions_3d
from omnissl_medical.views import patchify


class MAE3DConfig(ComponentConfig):
    """MAE decoder and loss.

    Attributes:
        decoder_dim, decoder_depth, decoder_heads: the light decoder (defaults 128, 2, 4; MAE's is 512 wide,
            8 deep for ViT-L, and the paper shows depth 1-2 already probes well when the decoder is narrow).
        norm_pix_loss: normalise each target patch by its mean and std (default ``True``, MAE's better setting).
    """

    decoder_dim: int = Field(128, ge=6)
    decoder_depth: int = Field(2, ge=1)
    decoder_heads: int = Field(4, gt=0)
    norm_pix_loss: bool = True


class MAE3DObjective(Objective):
    """Encode visible patches, decode every position (mask token + positions), MSE on masked patches.

    Uses ``views.info`` ``keep (B, K)``, ``masked (B, M)``, ``grid``, ``patch_size`` from ``medical.patch_masking``.
    Logs ``mse`` (the loss) and ``mask_ratio`` (measured ``M / N``).

    Shapes:
        volume ``(B, C, D, H, W)`` -> prediction ``(B, N, p³C)`` -> loss over ``(B, M)`` masked patches.
    """

    def __init__(self, encoder_dim: int, patch_size: int, channels: int, grid: tuple[int, int, int], cfg: MAE3DConfig):
        super().__init__()
        self.cfg = cfg
        self.patch_size = patch_size
        self.grid = tuple(grid)
        self.embed = nn.Linear(encoder_dim, cfg.decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(cfg.decoder_dim))
        nn.init.normal_(self.mask_token, std=0.02)  # MAE: torch.nn.init.normal_(self.mask_token, std=.02)
        self.decoder = TransformerTrunk(TrunkConfig(dim=cfg.decoder_dim, depth=cfg.decoder_depth, heads=cfg.decoder_heads))
        self.predict = nn.Linear(cfg.decoder_dim, patch_size**3 * channels)
        self.register_buffer("positions", sincos_positions_3d(self.grid, cfg.decoder_dim), persistent=False)

    def forward(self, encoder: Encoder, views: Views) -> ObjectiveOutput:
        info = views.info
        if "keep" not in info:
            raise ValueError("medical.mae3d needs views with info['keep'] and info['masked']; use views: {name: medical.patch_masking}")
        if info["patch_size"] != self.patch_size or tuple(info["grid"]) != self.grid:
            raise ValueError(f"views.patch_size={info['patch_size']} (grid {info['grid']}) must match the encoder's patch size "
                             f"{self.patch_size} (grid {self.grid}); set both to the same value")
        volume = views.inputs[0]
        keep, masked = info["keep"], info["masked"]
        visible = encoder(volume, keep=keep).tokens  # (B, K, D): the encoder never sees masked patches
        B, K = keep.shape
        N = K + masked.shape[1]
        x = self.embed(visible)
        full = self.mask_token.to(x.dtype).expand(B, N, -1).clone()
        full = full.scatter(1, keep.unsqueeze(-1).expand(-1, -1, x.shape[-1]), x)
        pred = self.predict(self.decoder(full + self.positions.to(x.dtype)))  # (B, N, p³C)
        target = patchify(volume, self.patch_size)
        if self.cfg.norm_pix_loss:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1e-6) ** 0.5
        per_patch = (gather_tokens(pred, masked).float() - gather_tokens(target, masked).float()).pow(2).mean(dim=-1)
        loss = per_patch.mean()
        return ObjectiveOutput(loss=loss, logs={"mse": loss.detach(), "mask_ratio": torch.full((), masked.shape[1] / N, device=loss.device)})

    @classmethod
    def build(cls, cfg: MAE3DConfig, ctx: BuildContext) -> MAE3DObjective:
        enc = ctx.encoder
        if not hasattr(enc, "grid") or not hasattr(enc, "patch_size"):
            from omnissl.errors import ConfigError

            raise ConfigError(["objective: medical.mae3d needs a patch encoder that accepts keep= (encoder: {name: medical.vit})"])
        return cls(enc.output_dim, enc.patch_size, enc.in_channels, enc.grid, cfg)
