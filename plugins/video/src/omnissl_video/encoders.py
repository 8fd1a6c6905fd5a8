"""``video.vit``: a ViT over space-time tubelets (VideoMAE's backbone) on the core transformer trunk.

The stem cuts a clip into non-overlapping ``tubelet x patch x patch`` tubes and projects each linearly
(VideoMAE's ``PatchEmbed`` is a ``Conv3d`` whose kernel equals its stride, which is the same map; the
weights convert by a reshape, see :mod:`omnissl_video.hf`). Positions are VideoMAE's fixed 1-D sin-cos
table over the flattened ``(t h w)`` token order (``get_sinusoid_encoding_table``). The trunk is the
core's pre-norm SDPA :class:`omnissl.nn.TransformerTrunk` (final LayerNorm included, as VideoMAE's
pretraining encoder), so ``keep=`` encodes only the visible tubes of a masked clip.

Shapes:
    clips ``(B, C, T, H, W)`` -> tokens ``(B, N, D)`` with ``N = (T/tubelet)(H/patch)(W/patch)`` (``(B, K, D)``
    with ``keep`` ``(B, K)``), pooled ``(B, D)`` = mean over tokens.
"""

from __future__ import annotations

from typing import Literal

import torch
from einops import rearrange
from pydantic import Field
from torch import Tensor, nn

from omnissl.errors import ConfigError
from omnissl.interfaces import Encoded, Encoder
from omnissl.nn import TransformerTrunk, TrunkConfig, sincos_positions
from omnissl.specs import BuildContext, ComponentConfig

# ViT widths (Dosovitskiy et al. 2021; Touvron et al. 2021 for tiny/small); "micro" is for CPU tests
PRESETS: dict[str, dict[str, int]] = {
    "micro": {"dim": 96, "depth": 4, "heads": 3},
    "tiny": {"dim": 192, "depth": 12, "heads": 3},
    "small": {"dim": 384, "depth": 12, "heads": 6},
    "base": {"dim": 768, "depth": 12, "heads": 12},
}


class VideoViTConfig(ComponentConfig):
    """Video ViT settings.

    Attributes:
        preset: ``micro`` (96 wide, 4 blocks), ``tiny`` (192, 12), ``small`` (384, 12) or ``base`` (768, 12)
            (default ``tiny``); ``dim``, ``depth``, ``heads`` override it.
        patch_size: spatial side of a tube (default 16). tubelet_size: frames per tube (default 2).
        channels, num_frames, image_size: input shape; ``None`` takes it from the data source's
            ``clip_shape`` (defaults 3, 16, 224 without one).
        mlp_ratio: feed-forward width over ``dim`` (default 4.0). dropout: (default 0.0, as VideoMAE).
        trunk: ``"@shared.<name>"`` to use a shared transformer trunk from the run's ``shared:`` block.
    """

    preset: Literal["micro", "tiny", "small", "base"] = "tiny"
    dim: int | None = Field(None, gt=0)
    depth: int | None = Field(None, ge=0)
    heads: int | None = Field(None, gt=0)
    patch_size: int = Field(16, gt=0)
    tubelet_size: int = Field(2, gt=0)
    channels: int | None = Field(None, gt=0)
    num_frames: int | None = Field(None, gt=0)
    image_size: int | None = Field(None, gt=0)
    mlp_ratio: float = Field(4.0, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)
    trunk: str | None = None


def xavier_init(module: nn.Module) -> None:
    """VideoMAE's ``_init_weights``: xavier-uniform linear weights, zero biases, unit LayerNorms."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class VideoViT(Encoder):
    """Tubelet stem + sin-cos positions + core trunk; see the module docstring for shapes."""

    def __init__(self, channels: int, num_frames: int, image_size: int, patch_size: int = 16, tubelet_size: int = 2,
                 trunk: TransformerTrunk | None = None, trunk_config: TrunkConfig | None = None):
        super().__init__()
        if num_frames % tubelet_size or image_size % patch_size:
            raise ConfigError([
                f"encoder: clips of {num_frames} frames at {image_size}x{image_size} do not split into "
                f"{tubelet_size}x{patch_size}x{patch_size} tubes; choose tubelet_size dividing num_frames and patch_size dividing the size"
            ])
        owns_trunk = trunk is None
        self.trunk = trunk if trunk is not None else TransformerTrunk(trunk_config or TrunkConfig())
        self.dim = self.output_dim = self.trunk.dim
        self.channels, self.num_frames, self.image_size = channels, num_frames, image_size
        self.patch_size, self.tubelet_size = patch_size, tubelet_size
        self.grid = (num_frames // tubelet_size, image_size // patch_size, image_size // patch_size)
        self.num_tokens = self.grid[0] * self.grid[1] * self.grid[2]
        self.patch_dim = channels * tubelet_size * patch_size * patch_size
        self.patch_embed = nn.Linear(self.patch_dim, self.dim)
        self.register_buffer("position_table", sincos_positions(self.num_tokens, self.dim), persistent=False)
        # VideoMAE re-initialises linear layers xavier-uniform but not its Conv3d patch projection, whose
        # PyTorch default (kaiming-uniform, fan-in C*pt*p*p) is exactly nn.Linear's default here
        if owns_trunk:
            xavier_init(self.trunk)

    def tubes(self, clips: Tensor) -> Tensor:
        """Flatten each tube in Conv3d weight order: ``(B, C, T, H, W)`` -> ``(B, N, C * pt * p * p)``."""
        return rearrange(clips, "b c (t pt) (h ph) (w pw) -> b (t h w) (c pt ph pw)", pt=self.tubelet_size, ph=self.patch_size, pw=self.patch_size)

    def positions(self, num_tokens: int, x: Tensor) -> Tensor:
        if num_tokens <= self.position_table.shape[0]:
            return self.position_table[:num_tokens].to(x.dtype)
        return sincos_positions(num_tokens, self.dim, device=x.device).to(x.dtype)

    def embed(self, clips: Tensor) -> Tensor:
        """Tube tokens with positions, before the trunk: ``(B, N, D)``."""
        if clips.dim() != 5 or clips.shape[1] != self.channels:
            raise ValueError(f"video.vit expects clips (B, C={self.channels}, T, H, W), got {tuple(clips.shape)}")
        x = self.patch_embed(self.tubes(clips))
        return x + self.positions(x.shape[1], x)

    def forward(self, batch: Tensor, keep: Tensor | None = None) -> Encoded:
        tokens, layers = self.trunk(self.embed(batch), keep=keep, return_layers=True)
        return Encoded(pooled=tokens.mean(dim=1), tokens=tokens, layers=layers)


def _resolve_trunk(cfg: VideoViTConfig, ctx: BuildContext) -> TransformerTrunk | None:
    if not cfg.trunk:
        return None
    trunk = ctx.resolve_shared(cfg.trunk)
    if not isinstance(trunk, TransformerTrunk):
        trunk = getattr(trunk, "trunk", None)
    if not isinstance(trunk, TransformerTrunk):
        raise ConfigError([f"encoder.trunk: {cfg.trunk!r} is not a transformer trunk (use a core.transformer_trunk in shared:)"])
    return trunk


def video_vit(cfg: VideoViTConfig, ctx: BuildContext) -> VideoViT:
    shape = getattr(ctx.data, "clip_shape", None) if ctx is not None and ctx.data is not None else None
    channels = cfg.channels or (shape[0] if shape else 3)
    num_frames = cfg.num_frames or (shape[1] if shape else 16)
    image_size = cfg.image_size or (shape[2] if shape else 224)
    preset = PRESETS[cfg.preset]
    trunk_cfg = TrunkConfig(
        dim=cfg.dim or preset["dim"], depth=cfg.depth if cfg.depth is not None else preset["depth"], heads=cfg.heads or preset["heads"],
        mlp_ratio=cfg.mlp_ratio, dropout=cfg.dropout,
    )
    return VideoViT(channels, num_frames, image_size, cfg.patch_size, cfg.tubelet_size, _resolve_trunk(cfg, ctx), trunk_cfg)
