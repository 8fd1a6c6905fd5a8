"""Batched 3-D augmentations and the view generators of the medical objectives.

Every function here runs on the batch's device, on the whole batch at once, and draws every random number
from the explicit ``torch.Generator``; nothing reads a tensor value back to the host. MONAI's random
transforms (``RandFlip``, ``RandRotate90``, ``RandSpatialCrop``) draw one parameter per call from NumPy and
transform one sample at a time, so the batched versions are written here on ``affine_grid`` /
``grid_sample`` (crop + flip + resize in one resampling) and ``torch.rot90`` (exact 90° rotations, one of
four precomputed rotations gathered per sample).

Batches are ``(B, C, D, H, W)`` float tensors; axis names below are ``d, h, w`` (the first, second and third
voxel axes; after ``medical.nifti``'s reorientation to RAS they run along x, y, z).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from pydantic import Field
from torch import Tensor

from omnissl.interfaces import ViewGenerator, Views
from omnissl.specs import BuildContext, ComponentConfig

# the plane each rotation axis turns: rotating "about" voxel axis a permutes the other two (dims of (B, C, D, H, W))
ROTATION_PLANES = {0: (3, 4), 1: (2, 4), 2: (2, 3)}


# ------------------------------------------------------------------------------------- primitives
def rotate90(x: Tensor, k: Tensor, axis: int) -> Tensor:
    """Rotate each volume by ``k[b] * 90°`` about voxel ``axis`` (0, 1 or 2): ``torch.rot90`` per sample.

    All four rotations of a cube are computed once and the one of each sample is gathered, so the batch
    needs no per-sample Python loop and no host read of ``k``. Non-cubic planes only allow ``k`` even.

    Shapes: ``x (B, C, D, H, W)``, ``k (B,)`` long in ``[0, 4)`` -> ``(B, C, D, H, W)``.
    """
    plane = ROTATION_PLANES[axis]
    if x.shape[plane[0]] != x.shape[plane[1]]:
        raise ValueError(f"90° rotations about axis {axis} need a square plane, got sizes {x.shape[plane[0]]} and {x.shape[plane[1]]}")
    rotations = torch.stack([torch.rot90(x, r, dims=plane) for r in range(4)])  # (4, B, C, D, H, W)
    index = k.view(1, -1, 1, 1, 1, 1).expand(1, *x.shape)
    return rotations.gather(0, index).squeeze(0)


def crop_flip(x: Tensor, generator: torch.Generator, crop_min: float, flip_p: float, flip_axes: tuple[int, ...] = (0, 1, 2)) -> Tensor:
    """Random sub-cube of relative side in ``[crop_min, 1]`` resized back to the full size, with per-axis flips.

    One ``affine_grid``/``grid_sample`` (trilinear) per batch: a diagonal affine with scale ``s * (±1)`` and
    a translation keeping the crop inside the volume. Only the voxel axes in ``flip_axes`` may flip.
    """
    B = x.shape[0]
    device = x.device
    scale = crop_min + (1.0 - crop_min) * torch.rand(B, 1, generator=generator, device=device)
    shift = (1.0 - scale) * (2 * torch.rand(B, 3, generator=generator, device=device) - 1)
    # affine_grid's columns are (x, y, z) = voxel axes (w, h, d), i.e. voxel axis a is column 2 - a
    allowed = torch.tensor([2 - a in flip_axes for a in range(3)], device=device)
    flips = torch.where((torch.rand(B, 3, generator=generator, device=device) < flip_p) & allowed, -1.0, 1.0)
    theta = torch.zeros(B, 3, 4, device=device)
    theta[:, :, :3] = torch.diag_embed(scale * flips)
    theta[:, :, 3] = shift
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def intensity(x: Tensor, generator: torch.Generator, scale: float, shift: float, noise_std: float) -> Tensor:
    """Per-volume intensity scale ``1 ± scale``, shift ``± shift`` (times the batch std) and Gaussian noise."""
    B = x.shape[0]
    device = x.device
    std = x.detach().flatten(1).std(dim=1).clamp_min(1e-6).view(B, 1, 1, 1, 1)
    a = 1.0 + scale * (2 * torch.rand(B, 1, 1, 1, 1, generator=generator, device=device) - 1)
    b = shift * std * (2 * torch.rand(B, 1, 1, 1, 1, generator=generator, device=device) - 1)
    noise = noise_std * std * torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype)
    return x * a + b + noise


class AugmentConfig(ComponentConfig):
    """Random 3-D augmentation of each view.

    Attributes:
        crop_min: smallest relative side of the random crop that is resized back (default 0.6; 1.0 = off).
        flip_p: probability of flipping each axis (default 0.5).
        rotate: apply a random 90° rotation about ``rotate_axis`` (default ``True``).
        rotate_axis: 0, 1 or 2 (default 2).
        scale, shift: intensity scale ``1 ± scale`` and shift ``± shift`` std (defaults 0.1, 0.1).
        noise_std: Gaussian noise, in units of the volume's std (default 0.05).
    """

    crop_min: float = Field(0.6, gt=0, le=1)
    flip_p: float = Field(0.5, ge=0, le=1)
    rotate: bool = True
    rotate_axis: int = Field(2, ge=0, le=2)
    scale: float = Field(0.1, ge=0)
    shift: float = Field(0.1, ge=0)
    noise_std: float = Field(0.05, ge=0)


def augment(x: Tensor, generator: torch.Generator, cfg: AugmentConfig) -> Tensor:
    """Crop + flip, 90° rotation, intensity: one augmented copy of the batch."""
    if cfg.crop_min < 1.0 or cfg.flip_p > 0:
        x = crop_flip(x, generator, cfg.crop_min, cfg.flip_p)
    if cfg.rotate:
        k = torch.randint(0, 4, (x.shape[0],), generator=generator, device=x.device)
        x = rotate90(x, k, cfg.rotate_axis)
    return intensity(x, generator, cfg.scale, cfg.shift, cfg.noise_std)


# ------------------------------------------------------------------------------------- two views
class TwoViews(ViewGenerator):
    """Two independently augmented views of each volume (SimCLR-style contrast).

    ``Views.inputs`` = ``[view_1, view_2]`` each ``(B, C, D, H, W)``; ``original`` is the batch.
    """

    def __init__(self, cfg: AugmentConfig):
        super().__init__()
        self.cfg = cfg

    def forward(self, batch: Tensor, generator: torch.Generator) -> Views:
        return Views(inputs=[augment(batch, generator, self.cfg), augment(batch, generator, self.cfg)], original=batch)


# ------------------------------------------------------------------------------------- MAE masking
class PatchMaskingConfig(ComponentConfig):
    """Random masking of cubic patches (MAE, He et al. 2022, section 3: uniform random sampling without replacement).

    Attributes:
        patch_size: side of the cubic patches; must equal the encoder's (default 4).
        mask_ratio: fraction of patches masked (default 0.75, MAE's ratio).
        flip_p: probability of flipping each axis of the volume first (default 0.0; MAE uses only crops and flips).
    """

    patch_size: int = Field(4, ge=1)
    mask_ratio: float = Field(0.75, gt=0, lt=1)
    flip_p: float = Field(0.0, ge=0, le=1)


class PatchMasking(ViewGenerator):
    """MAE masking: per volume, a random permutation of the patches; the first ``K`` are kept.

    ``Views.inputs`` = ``[volume]``; ``info``: ``keep (B, K)`` and ``masked (B, M)`` patch indices (``K + M = N``,
    ``K = round(N * (1 - mask_ratio))``, fixed by the shape, so no host read), ``grid`` the patch grid
    ``(d, h, w)`` and ``patch_size``.
    """

    def __init__(self, cfg: PatchMaskingConfig):
        super().__init__()
        self.cfg = cfg

    def grid(self, batch: Tensor) -> tuple[int, int, int]:
        p = self.cfg.patch_size
        dims = batch.shape[2:]
        if any(s % p for s in dims):
            raise ValueError(f"volume size {tuple(dims)} is not divisible by views.patch_size={p}; crop or pad the data (data.preprocessing.size)")
        return tuple(s // p for s in dims)  # type: ignore[return-value]

    def forward(self, batch: Tensor, generator: torch.Generator) -> Views:
        grid = self.grid(batch)
        B, N = batch.shape[0], grid[0] * grid[1] * grid[2]
        if self.cfg.flip_p > 0:
            batch = crop_flip(batch, generator, 1.0, self.cfg.flip_p)
        num_keep = max(1, round(N * (1 - self.cfg.mask_ratio)))
        order = torch.rand(B, N, generator=generator, device=batch.device).argsort(dim=1)
        return Views(inputs=[batch], original=batch, info={
            "keep": order[:, :num_keep], "masked": order[:, num_keep:], "grid": grid, "patch_size": self.cfg.patch_size,
        })


# ------------------------------------------------------------------------------------- Swin SSL
class SwinSSLViewsConfig(ComponentConfig):
    """Views of Tang et al. (CVPR 2022), following the authors' ``rot_rand`` and ``aug_rand``.

    Each volume gives two sub-volumes, each rotated by a random multiple of 90° (the rotation class is the
    label, 4 classes per axis in ``axes``: label = ``axis_index * 4 + k``), then corrupted for inpainting by
    cutouts filled with noise (``aug_rand``: ``cutouts`` boxes of up to ``cutout_size`` of the side). The
    reconstruction target is the rotated, uncorrupted volume.

    Attributes:
        axes: rotation axes (default ``[2]``: the paper rotates about the z axis only).
        cutouts: boxes per volume (default 2). cutout_size: largest box side as a fraction (default 0.5).
        crop_min, flip_p: crop and flip before rotation, as ``medical.augment`` (defaults 0.7, 0.5).
    """

    axes: list[int] = Field(default_factory=lambda: [2], min_length=1)
    cutouts: int = Field(2, ge=0)
    cutout_size: float = Field(0.5, gt=0, le=1)
    crop_min: float = Field(0.7, gt=0, le=1)
    flip_p: float = Field(0.5, ge=0, le=1)


def random_rotation(x: Tensor, generator: torch.Generator, axes: list[int]) -> tuple[Tensor, Tensor]:
    """Rotate each volume by ``k * 90°`` about one of ``axes``; return it and the class ``axis_index * 4 + k``."""
    B = x.shape[0]
    k = torch.randint(0, 4, (B,), generator=generator, device=x.device)
    which = torch.randint(0, len(axes), (B,), generator=generator, device=x.device)
    out = x
    if len(axes) == 1:
        out = rotate90(x, k, axes[0])
    else:
        candidates = torch.stack([rotate90(x, k, a) for a in axes])  # (A, B, C, D, H, W)
        out = candidates.gather(0, which.view(1, -1, 1, 1, 1, 1).expand(1, *x.shape)).squeeze(0)
    return out, which * 4 + k


def cutout_noise(x: Tensor, generator: torch.Generator, count: int, max_size: float) -> tuple[Tensor, Tensor]:
    """Replace ``count`` random boxes per volume with Gaussian noise of the volume's statistics; also return the mask.

    Shapes: ``x (B, C, D, H, W)`` -> corrupted ``(B, C, D, H, W)``, mask ``(B, 1, D, H, W)`` bool.
    """
    B = x.shape[0]
    device = x.device
    dims = torch.tensor(x.shape[2:], device=device, dtype=torch.float32)
    mask = torch.zeros(B, 1, *x.shape[2:], dtype=torch.bool, device=device)
    coords = [torch.arange(s, device=device, dtype=torch.float32) for s in x.shape[2:]]
    for _ in range(count):
        size = (max_size * dims * torch.rand(B, 3, generator=generator, device=device)).clamp_min(1.0)
        start = (dims - size) * torch.rand(B, 3, generator=generator, device=device)
        inside = [((c[None] >= start[:, i, None]) & (c[None] < (start + size)[:, i, None])) for i, c in enumerate(coords)]
        box = inside[0][:, :, None, None] & inside[1][:, None, :, None] & inside[2][:, None, None, :]
        mask |= box[:, None]
    flat = x.flatten(1)
    noise = torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype)
    noise = noise * flat.std(dim=1).view(B, 1, 1, 1, 1) + flat.mean(dim=1).view(B, 1, 1, 1, 1)
    return torch.where(mask, noise, x), mask


class SwinSSLViews(ViewGenerator):
    """``inputs`` = ``[corrupted_1, corrupted_2]``; ``info``: ``rotation (2B,)`` classes, ``target (2B, C, D, H, W)``
    rotated clean volumes, ``cutout (2B, 1, D, H, W)`` masks, ``num_rotations``."""

    def __init__(self, cfg: SwinSSLViewsConfig):
        super().__init__()
        if any(a not in ROTATION_PLANES for a in cfg.axes):
            raise ValueError(f"views.axes: {cfg.axes} must be voxel axes 0, 1 or 2")
        self.cfg = cfg

    def forward(self, batch: Tensor, generator: torch.Generator) -> Views:
        cfg = self.cfg
        inputs, targets, rotations, masks = [], [], [], []
        for _ in range(2):
            x = crop_flip(batch, generator, cfg.crop_min, cfg.flip_p) if (cfg.crop_min < 1 or cfg.flip_p > 0) else batch
            x, rotation = random_rotation(x, generator, cfg.axes)
            corrupted, mask = cutout_noise(x, generator, cfg.cutouts, cfg.cutout_size)
            inputs.append(corrupted)
            targets.append(x)
            rotations.append(rotation)
            masks.append(mask)
        return Views(inputs=inputs, original=batch, info={
            "rotation": torch.cat(rotations), "target": torch.cat(targets), "cutout": torch.cat(masks), "num_rotations": 4 * len(cfg.axes),
        })


# ------------------------------------------------------------------------------------- global/local
class GlobalLocalViewsConfig(ComponentConfig):
    """Views of Chaitanya et al. (NeurIPS 2020): two intensity-augmented copies with the *same* geometry.

    The geometric part (crop, flip) is drawn once per volume and shared by both copies, so a voxel position
    is the same anatomical point in both: the local contrastive loss compares decoder features at equal
    positions. Intensity (scale, shift, noise) is drawn independently per copy, as in the paper's
    "random intensity" augmentations.

    The first voxel axis, along which ``medical.global_local_contrast`` cuts its partitions, is never
    flipped: G^D's positives are the same partition index of different volumes, which the paper takes to be
    the same anatomy (aligned volumes); a flip there would make partition 0 of one volume show the anatomy of
    partition ``S - 1``.

    Attributes:
        crop_min, flip_p: shared geometry (defaults 0.8, 0.5; flips of the second and third axes only).
        scale, shift, noise_std: per-copy intensity (defaults 0.2, 0.2, 0.05).
    """

    crop_min: float = Field(0.8, gt=0, le=1)
    flip_p: float = Field(0.5, ge=0, le=1)
    scale: float = Field(0.2, ge=0)
    shift: float = Field(0.2, ge=0)
    noise_std: float = Field(0.05, ge=0)


class GlobalLocalViews(ViewGenerator):
    """``inputs`` = ``[view_1, view_2]``, same geometry, independent intensity."""

    def __init__(self, cfg: GlobalLocalViewsConfig):
        super().__init__()
        self.cfg = cfg

    def forward(self, batch: Tensor, generator: torch.Generator) -> Views:
        cfg = self.cfg
        x = crop_flip(batch, generator, cfg.crop_min, cfg.flip_p, flip_axes=(1, 2)) if (cfg.crop_min < 1 or cfg.flip_p > 0) else batch
        views = [intensity(x, generator, cfg.scale, cfg.shift, cfg.noise_std) for _ in range(2)]
        return Views(inputs=views, original=batch)


def patchify(x: Tensor, p: int) -> Tensor:
    """``(B, C, D, H, W)`` -> ``(B, N, p³C)`` patches in ``(d h w)`` raster order (the ViT's token order)."""
    return rearrange(x, "b c (d pd) (h ph) (w pw) -> b (d h w) (pd ph pw c)", pd=p, ph=p, pw=p)


def build_two_views(cfg: AugmentConfig, ctx: BuildContext) -> TwoViews:
    return TwoViews(cfg)


def build_patch_masking(cfg: PatchMaskingConfig, ctx: BuildContext) -> PatchMasking:
    return PatchMasking(cfg)


def build_swin_ssl_views(cfg: SwinSSLViewsConfig, ctx: BuildContext) -> SwinSSLViews:
    return SwinSSLViews(cfg)


def build_global_local_views(cfg: GlobalLocalViewsConfig, ctx: BuildContext) -> GlobalLocalViews:
    return GlobalLocalViews(cfg)
