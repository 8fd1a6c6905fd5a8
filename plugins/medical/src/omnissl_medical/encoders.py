"""Volume encoders: a 3-D ViT on the core trunk, and MONAI's 3-D ResNet and Swin transformer.

Where each comes from:

- ``medical.vit``: written here because it is a *stem* on the core's :class:`omnissl.nn.TransformerTrunk`
  (so it accepts ``keep=`` for MAE and ``trunk: "@shared.<name>"`` for cross-domain runs); MONAI's
  ``ViT`` has its own transformer blocks and no token-subset input. The stem is a ``Conv3d`` with kernel =
  stride = patch (the ViT patch embedding) and the positions are fixed 3-D sine-cosine tables (one core
  :func:`omnissl.nn.sincos_positions` table per axis, concatenated, as MAE's 2-D version does per axis).
- ``medical.resnet``: MONAI's ``monai.networks.nets.ResNet`` (basic blocks; ``layers`` and widths set in the
  config), the 3-D ResNet that MedMNIST v2's "ResNet + 3D" baselines use.
- ``medical.swin``: MONAI's ``SwinTransformer`` from ``monai.networks.nets.swin_unetr``, the encoder of
  SwinUNETR (Hatamizadeh et al. 2022) that Tang et al. (CVPR 2022) pretrain.

Every encoder returns :class:`Encoded` with ``pooled (B, D)`` and offers ``feature_map(x) -> (B, C, d, h, w)``,
the last spatial feature map, which the objectives' decoders (inpainting, local contrast) upsample, and
``stage_features(x) -> (B, sum of stage widths)``: every stage's (ResNet, Swin) or block's (ViT) output
average-pooled and concatenated, the multi-layer readout a frozen probe can read instead of ``pooled``
(``medical.auc_probe`` ``readout: stages``; MAE's features are known to probe better from intermediate layers).
"""

from __future__ import annotations

import torch
from einops import rearrange
from pydantic import Field
from torch import Tensor, nn

from omnissl.errors import ConfigError
from omnissl.interfaces import Encoded, Encoder
from omnissl.nn import TransformerTrunk, TrunkConfig, sincos_positions
from omnissl.specs import BuildContext, ComponentConfig

DEFAULT_SHAPE = (1, 28, 28, 28)


def _volume_shape(ctx: BuildContext) -> tuple[int, int, int, int]:
    shape = getattr(ctx.data, "volume_shape", None) if ctx is not None else None
    return tuple(shape) if shape else DEFAULT_SHAPE  # type: ignore[return-value]


def sincos_positions_3d(grid: tuple[int, int, int], dim: int) -> Tensor:
    """``(d*h*w, dim)`` fixed positions: a sin-cos table per axis over ``2 * (dim // 6)`` channels each, concatenated
    in ``(d, h, w)`` order; leftover channels (``dim % 6``) are zero."""
    per_axis = 2 * (dim // 6)
    if per_axis == 0:
        raise ValueError(f"3-D sin-cos positions need dim >= 6, got {dim}")
    tables = [sincos_positions(n, per_axis) for n in grid]
    d, h, w = grid
    pos = torch.cat([
        tables[0][:, None, None, :].expand(d, h, w, per_axis),
        tables[1][None, :, None, :].expand(d, h, w, per_axis),
        tables[2][None, None, :, :].expand(d, h, w, per_axis),
    ], dim=-1).reshape(d * h * w, 3 * per_axis)
    return torch.nn.functional.pad(pos, (0, dim - 3 * per_axis))


# ------------------------------------------------------------------------------------------ ViT
class VolumeViTConfig(ComponentConfig):
    """3-D ViT over cubic patches (Dosovitskiy et al. 2021, extended to volumes as in UNETR/MAE-3D).

    Attributes:
        patch_size: side of the cubic patches; must divide every volume side (default 4: 7³ tokens at 28³).
        dim, depth, heads, mlp_ratio, dropout: the core trunk (defaults 192, 6, 6, 4.0, 0.0).
        trunk: ``"@shared.<name>"`` to use a shared trunk from the run's ``shared:`` block (default ``None``).
        pool: ``"mean"`` of the final tokens (default; MAE's linear-probe recipe uses the mean too).
    """

    patch_size: int = Field(4, ge=1)
    dim: int = Field(192, ge=6)
    depth: int = Field(6, ge=0)
    heads: int = Field(6, gt=0)
    mlp_ratio: float = Field(4.0, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)
    trunk: str | None = None


class VolumeViT(Encoder):
    """Patch embedding (``Conv3d``, kernel = stride = patch) + 3-D sin-cos positions + core trunk; mean pooling.

    ``forward(x, keep=None)``: ``keep (B, K)`` encodes only those patches (positions added before the
    gather, as MAE does), so a 75%-masked MAE step runs the trunk on a quarter of the tokens.

    Shapes:
        ``x (B, C, D, H, W)`` -> tokens ``(B, N or K, dim)`` with ``N = (D/p)(H/p)(W/p)``, pooled ``(B, dim)``.
    """

    def __init__(self, volume_shape: tuple[int, int, int, int], cfg: VolumeViTConfig, trunk: TransformerTrunk | None = None):
        super().__init__()
        channels, *spatial = volume_shape
        p = cfg.patch_size
        if any(s % p for s in spatial):
            raise ConfigError([f"encoder.patch_size: {p} does not divide the volume size {tuple(spatial)}; pick a divisor or resize the data"])
        self.cfg = cfg
        self.patch_size = p
        self.in_channels = channels
        self.grid = tuple(s // p for s in spatial)
        self.num_patches = self.grid[0] * self.grid[1] * self.grid[2]
        self.trunk = trunk or TransformerTrunk(TrunkConfig(dim=cfg.dim, depth=cfg.depth, heads=cfg.heads, mlp_ratio=cfg.mlp_ratio, dropout=cfg.dropout))
        self.dim = self.output_dim = self.trunk.dim
        self.embed = nn.Conv3d(channels, self.dim, kernel_size=p, stride=p)
        self.register_buffer("positions", sincos_positions_3d(self.grid, self.dim), persistent=False)

    def tokens(self, x: Tensor) -> Tensor:
        """Patch embeddings plus positions: ``(B, N, dim)``."""
        if tuple(x.shape[2:]) != tuple(s * self.patch_size for s in self.grid):
            raise ValueError(f"volume of size {tuple(x.shape[2:])} given to a ViT built for {tuple(s * self.patch_size for s in self.grid)}")
        return rearrange(self.embed(x), "b c d h w -> b (d h w) c") + self.positions.to(x.dtype)

    def forward(self, x: Tensor, keep: Tensor | None = None) -> Encoded:
        tokens = self.trunk(self.tokens(x), keep=keep)
        return Encoded(pooled=tokens.mean(dim=1), tokens=tokens)

    def stage_features(self, x: Tensor) -> Tensor:
        """Mean token of every block's output, then of the final norm: ``(B, (depth + 1) * dim)``."""
        tokens, layers = self.trunk(self.tokens(x), return_layers=True)
        return torch.cat([t.mean(dim=1) for t in (*layers, tokens)], dim=1)

    def feature_map(self, x: Tensor) -> Tensor:
        """All tokens as a grid: ``(B, dim, D/p, H/p, W/p)``."""
        tokens = self.trunk(self.tokens(x))
        d, h, w = self.grid
        return rearrange(tokens, "b (d h w) c -> b c d h w", d=d, h=h, w=w)


def build_vit(cfg: VolumeViTConfig, ctx: BuildContext) -> VolumeViT:
    trunk = ctx.resolve_shared(cfg.trunk) if cfg.trunk else None
    if trunk is not None and not isinstance(trunk, TransformerTrunk):
        trunk = getattr(trunk, "trunk", None)
        if not isinstance(trunk, TransformerTrunk):
            raise ConfigError([f"encoder.trunk: {cfg.trunk!r} is not a transformer trunk (declare it as core.trunk or a token encoder in shared:)"])
    return VolumeViT(_volume_shape(ctx), cfg, trunk)


# ------------------------------------------------------------------------------------------ ResNet
class VolumeResNetConfig(ComponentConfig):
    """MONAI's 3-D ResNet (``monai.networks.nets.ResNet``, basic blocks; Hara et al. 2018 / Chen et al. 2019 Med3D).

    Attributes:
        layers: blocks per stage (default ``[2, 2, 2, 2]``, ResNet-18).
        widths: channels per stage (default ``[32, 64, 128, 256]``; ResNet-18 is 64..512, halved for CPU).
        stem_kernel, stem_stride: first convolution (defaults 3 and 1: a 28³ volume keeps its resolution
            into stage 1, as small-input ResNets do; 7 and 2 for full-size CT).
        max_pool: the stem's max-pool (default ``False`` for small volumes).
    """

    layers: list[int] = Field(default_factory=lambda: [2, 2, 2, 2], min_length=4, max_length=4)
    widths: list[int] = Field(default_factory=lambda: [32, 64, 128, 256], min_length=4, max_length=4)
    stem_kernel: int = Field(3, ge=1)
    stem_stride: int = Field(1, ge=1)
    max_pool: bool = False


class VolumeResNet(Encoder):
    """MONAI ResNet without its classifier: ``pooled`` = global average of the last stage (``(B, widths[-1])``).

    ``keep`` is not supported (a CNN has no tokens to drop): passing it raises.
    """

    def __init__(self, volume_shape: tuple[int, int, int, int], cfg: VolumeResNetConfig):
        super().__init__()
        from monai.networks.nets import ResNet

        self.cfg = cfg
        self.net = ResNet(
            block="basic", layers=list(cfg.layers), block_inplanes=list(cfg.widths), spatial_dims=3,
            n_input_channels=volume_shape[0], conv1_t_size=cfg.stem_kernel, conv1_t_stride=cfg.stem_stride,
            no_max_pool=not cfg.max_pool, feed_forward=False,
        )
        self.output_dim = self.feature_dim = cfg.widths[-1]

    def stage_maps(self, x: Tensor) -> list[Tensor]:
        """The outputs of the four stages: ``[(B, widths[i], d_i, h_i, w_i)]``."""
        n = self.net
        x = n.act(n.bn1(n.conv1(x)))
        if not n.no_max_pool:
            x = n.maxpool(x)
        maps = []
        for layer in (n.layer1, n.layer2, n.layer3, n.layer4):
            x = layer(x)
            maps.append(x)
        return maps

    def feature_map(self, x: Tensor) -> Tensor:
        return self.stage_maps(x)[-1]

    def stage_features(self, x: Tensor) -> Tensor:
        """Every stage's map, global-average pooled and concatenated: ``(B, sum(widths))``."""
        return torch.cat([m.mean(dim=(2, 3, 4)) for m in self.stage_maps(x)], dim=1)

    def forward(self, x: Tensor, keep: Tensor | None = None) -> Encoded:
        if keep is not None:
            raise ValueError("medical.resnet has no tokens: keep= is for token encoders (medical.vit)")
        fmap = self.feature_map(x)
        return Encoded(pooled=fmap.mean(dim=(2, 3, 4)), tokens=rearrange(fmap, "b c d h w -> b (d h w) c"))


def build_resnet(cfg: VolumeResNetConfig, ctx: BuildContext) -> VolumeResNet:
    return VolumeResNet(_volume_shape(ctx), cfg)


# ------------------------------------------------------------------------------------------ Swin
class VolumeSwinConfig(ComponentConfig):
    """MONAI's Swin transformer encoder of SwinUNETR (``monai.networks.nets.swin_unetr.SwinTransformer``).

    Attributes:
        embed_dim: channels of the first stage (default 24; SwinUNETR's pretrained model uses 48).
        depths, heads: blocks and heads for each of MONAI's four stages (defaults ``[2, 2, 2, 2]`` and
            ``[3, 6, 12, 24]``, as SwinUNETR).
        window_size: attention window (default 7, as SwinUNETR). patch_size: default 2, as SwinUNETR.
    """

    embed_dim: int = Field(24, ge=6)
    depths: list[int] = Field(default_factory=lambda: [2, 2, 2, 2], min_length=4, max_length=4)
    heads: list[int] = Field(default_factory=lambda: [3, 6, 12, 24], min_length=4, max_length=4)
    window_size: int = Field(7, ge=1)
    patch_size: int = Field(2, ge=1)


class VolumeSwin(Encoder):
    """SwinUNETR's encoder; ``pooled`` = global average of the deepest stage's normalised output
    (``embed_dim * 2**len(depths)`` channels).

    MONAI pads volumes whose sides are not multiples of the window internally, so 28³ works.
    """

    def __init__(self, volume_shape: tuple[int, int, int, int], cfg: VolumeSwinConfig):
        super().__init__()
        from monai.networks.nets.swin_unetr import SwinTransformer

        if len(cfg.depths) != len(cfg.heads):
            raise ConfigError([f"encoder.heads: {len(cfg.heads)} entries but encoder.depths has {len(cfg.depths)}; give one per stage"])
        self.cfg = cfg
        self.net = SwinTransformer(
            in_chans=volume_shape[0], embed_dim=cfg.embed_dim, window_size=(cfg.window_size,) * 3,
            patch_size=(cfg.patch_size,) * 3, depths=list(cfg.depths), num_heads=list(cfg.heads), spatial_dims=3,
        )
        self.output_dim = self.feature_dim = cfg.embed_dim * 2 ** len(cfg.depths)

    def feature_map(self, x: Tensor) -> Tensor:
        return self.net(x, normalize=True)[-1]

    def stage_features(self, x: Tensor) -> Tensor:
        """The patch embedding's and every stage's normalised output, average pooled and concatenated."""
        return torch.cat([m.mean(dim=(2, 3, 4)) for m in self.net(x, normalize=True)], dim=1)

    def forward(self, x: Tensor, keep: Tensor | None = None) -> Encoded:
        if keep is not None:
            raise ValueError("medical.swin encodes every window: keep= is for medical.vit")
        fmap = self.feature_map(x)
        return Encoded(pooled=fmap.mean(dim=(2, 3, 4)), tokens=rearrange(fmap, "b c d h w -> b (d h w) c"))


def build_swin(cfg: VolumeSwinConfig, ctx: BuildContext) -> VolumeSwin:
    return VolumeSwin(_volume_shape(ctx), cfg)
