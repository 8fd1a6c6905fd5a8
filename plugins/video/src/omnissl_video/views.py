"""Video view generators, batched on the device: tube masking and random resized crop + flip.

- ``video.tube_masking`` (VideoMAE, Tong et al. 2022, ``TubeMaskingGenerator``): each clip masks the same
  ``round(ratio * h * w)`` spatial patches in every temporal slot, so a masked tube is hidden in all its
  frames and the model cannot copy it from a neighbouring frame.
- ``video.augment``: a random resized crop (area and aspect ratio as torchvision's ``RandomResizedCrop``)
  and a horizontal flip per clip, the same for every frame of that clip, as one ``grid_sample`` call.
- ``video.masked_augment``: ``num_views`` augmented views, each tube-masked, plus one random frame index
  per clip (CrossVideoMAE's frame branch).

Every random number comes from the step's ``torch.Generator``; mask sizes are fixed by the config, so no
value is read back from the device.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from pydantic import Field
from torch import Tensor

from omnissl.interfaces import Views, ViewGenerator
from omnissl.specs import BuildContext, ComponentConfig


def _grid_sizes(ctx: BuildContext | None) -> tuple[int, int]:
    """``(tubelet, patch)`` of the task's encoder, or VideoMAE's ``(2, 16)`` without one."""
    enc = ctx.encoder if ctx is not None else None
    return getattr(enc, "tubelet_size", 2), getattr(enc, "patch_size", 16)


def tube_mask(batch: int, grid: tuple[int, int, int], ratio: float, generator: torch.Generator, device: torch.device) -> dict[str, Tensor]:
    """Tube masks for ``batch`` clips of ``grid = (t, h, w)`` tokens.

    Returns:
        ``mask`` ``(B, N)`` bool (``True`` = masked), ``keep`` ``(B, t * V)`` and ``masked`` ``(B, t * M)``
        token indices in increasing order, with ``M = round(ratio * h * w)``, ``V = h * w - M``, ``N = t*h*w``.
    """
    t, h, w = grid
    area = h * w
    num_masked = int(round(ratio * area))
    if not 0 < num_masked < area:
        raise ValueError(f"tube mask ratio {ratio} masks {num_masked} of {area} patches per frame; choose a ratio that leaves some visible and some masked")
    order = torch.rand(batch, area, generator=generator, device=generator.device).to(device).argsort(dim=1)
    hidden = order[:, :num_masked].sort(dim=1).values
    visible = order[:, num_masked:].sort(dim=1).values
    offsets = torch.arange(t, device=device) * area
    keep = rearrange(offsets[None, :, None] + visible[:, None, :], "b t v -> b (t v)")
    masked = rearrange(offsets[None, :, None] + hidden[:, None, :], "b t m -> b (t m)")
    spatial = torch.zeros(batch, area, dtype=torch.bool, device=device).scatter_(1, hidden, True)
    return {"mask": repeat(spatial, "b a -> b (t a)", t=t), "keep": keep, "masked": masked}


class TubeMaskingConfig(ComponentConfig):
    """Tube masking settings.

    Attributes:
        ratio: share of spatial patches masked in every frame (default 0.9, VideoMAE's).
        tubelet_size, patch_size: the token grid; ``None`` takes them from the task's encoder.
    """

    ratio: float = Field(0.9, gt=0, lt=1)
    tubelet_size: int | None = Field(None, gt=0)
    patch_size: int | None = Field(None, gt=0)


class TubeMasking(ViewGenerator):
    """VideoMAE's tube masking.

    ``Views.inputs == [clips]``; ``info``: ``mask`` ``(B, N)``, ``keep`` ``(B, K)``, ``masked`` ``(B, M)``,
    ``grid`` ``(t, h, w)`` (see :func:`tube_mask`).
    """

    def __init__(self, ratio: float = 0.9, tubelet_size: int = 2, patch_size: int = 16):
        super().__init__()
        self.ratio, self.tubelet_size, self.patch_size = ratio, tubelet_size, patch_size

    def grid(self, clips: Tensor) -> tuple[int, int, int]:
        _, _, t, h, w = clips.shape
        return t // self.tubelet_size, h // self.patch_size, w // self.patch_size

    def forward(self, batch: Tensor, generator: torch.Generator) -> Views:
        grid = self.grid(batch)
        info = tube_mask(batch.shape[0], grid, self.ratio, generator, batch.device)
        return Views(inputs=[batch], original=batch, info={**info, "grid": grid})


def tube_masking(cfg: TubeMaskingConfig, ctx: BuildContext) -> TubeMasking:
    tubelet, patch = _grid_sizes(ctx)
    return TubeMasking(cfg.ratio, cfg.tubelet_size or tubelet, cfg.patch_size or patch)


# ---------------------------------------------------------------------------------------- augment
class VideoAugmentConfig(ComponentConfig):
    """Random resized crop + horizontal flip, per clip, on the device.

    Attributes:
        num_views: augmented views per clip (default 2).
        scale: range of the crop's share of the frame area (default ``(0.4, 1.0)``).
        ratio: range of the crop's aspect ratio (default ``(3/4, 4/3)``, torchvision's).
        flip: probability of a horizontal flip (default 0.5; set 0 when left/right motion is a label, as
            in moving digits' ``direction``).
    """

    num_views: int = Field(2, ge=1)
    scale: tuple[float, float] = (0.4, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: float = Field(0.5, ge=0, le=1)


def random_resized_crop(clips: Tensor, generator: torch.Generator, scale: tuple[float, float], ratio: tuple[float, float], flip: float) -> Tensor:
    """One crop box (and flip) per clip, resampled to the input size with bilinear ``grid_sample``.

    The crop's area share is uniform in ``scale`` and its log aspect ratio uniform in ``log(ratio)``
    (torchvision's distribution), clamped to the frame instead of retried, so the draw has a fixed size.

    Shapes:
        ``(B, C, T, H, W)`` -> ``(B, C, T, H, W)``.
    """
    b, c, t, h, w = clips.shape
    u = torch.rand(b, 5, generator=generator, device=generator.device).to(clips.device)
    area = scale[0] + (scale[1] - scale[0]) * u[:, 0]
    log_r = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u[:, 1]
    aspect = log_r.exp()
    sw = (area * aspect).sqrt().clamp(max=1.0)  # crop width / frame width
    sh = (area / aspect).sqrt().clamp(max=1.0)
    cx = (1 - sw) * (2 * u[:, 2] - 1)  # centre in [-1, 1] keeping the box inside the frame
    cy = (1 - sh) * (2 * u[:, 3] - 1)
    sign = torch.where(u[:, 4] < flip, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3, device=clips.device, dtype=clips.dtype)
    theta[:, 0, 0], theta[:, 0, 2] = sw * sign, cx
    theta[:, 1, 1], theta[:, 1, 2] = sh, cy
    grid = F.affine_grid(theta, [b, c * t, h, w], align_corners=False)
    frames = F.grid_sample(rearrange(clips, "b c t h w -> b (c t) h w"), grid, mode="bilinear", padding_mode="border", align_corners=False)
    return rearrange(frames, "b (c t) h w -> b c t h w", c=c)


class VideoAugment(ViewGenerator):
    """``Views.inputs``: ``num_views`` augmented clips ``(B, C, T, H, W)``; ``original``: the clips."""

    def __init__(self, cfg: VideoAugmentConfig):
        super().__init__()
        self.cfg = cfg

    def forward(self, batch: Tensor, generator: torch.Generator) -> Views:
        views = [random_resized_crop(batch, generator, self.cfg.scale, self.cfg.ratio, self.cfg.flip) for _ in range(self.cfg.num_views)]
        return Views(inputs=views, original=batch)


def video_augment(cfg: VideoAugmentConfig, ctx: BuildContext) -> VideoAugment:
    return VideoAugment(cfg)


class MaskedAugmentConfig(VideoAugmentConfig):
    """``video.augment`` views, each tube-masked (``mask_ratio``, default 0.9), and a random frame per clip."""

    mask_ratio: float = Field(0.9, gt=0, lt=1)


class MaskedAugment(ViewGenerator):
    """``Views.inputs``: ``num_views`` augmented clips; ``info``: per view ``keep``/``masked``/``mask``
    lists (see :func:`tube_mask`), ``grid``, and ``frame`` ``(B,)``: a frame index per clip."""

    def __init__(self, cfg: MaskedAugmentConfig, tubelet_size: int, patch_size: int):
        super().__init__()
        self.augment = VideoAugment(cfg)
        self.masking = TubeMasking(cfg.mask_ratio, tubelet_size, patch_size)

    def forward(self, batch: Tensor, generator: torch.Generator) -> Views:
        views = self.augment(batch, generator)
        grid = self.masking.grid(batch)
        masks = [tube_mask(batch.shape[0], grid, self.masking.ratio, generator, batch.device) for _ in views.inputs]
        frame = torch.randint(batch.shape[2], (batch.shape[0],), generator=generator, device=generator.device).to(batch.device)
        info = {key: [m[key] for m in masks] for key in ("mask", "keep", "masked")}
        return Views(inputs=views.inputs, original=batch, info={**info, "grid": grid, "frame": frame})


def masked_augment(cfg: MaskedAugmentConfig, ctx: BuildContext) -> MaskedAugment:
    tubelet, patch = _grid_sizes(ctx)
    return MaskedAugment(cfg, tubelet, patch)
