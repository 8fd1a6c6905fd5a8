"""Reading one NIfTI volume into a fixed-size array: orientation, spacing, intensity, region of interest.

The steps run in this order, each with the field's library:

1. **read** with nibabel (``nib.load``; ``.nii`` and ``.nii.gz``); a file nibabel cannot parse, or one with
   fewer than three spatial axes, is a :class:`omnissl.errors.DataError` naming the file;
2. **reorient** the voxel axes to a common orientation (``"RAS"`` by default) with nibabel's orientation
   utilities (``io_orientation`` -> ``ornt_transform`` -> ``apply_orientation``), updating the affine with
   ``inv_ornt_aff`` so voxel ``(i, j, k)`` of the result still maps to the same point in scanner space;
3. **resample** to a target spacing in mm (optional) with ``nibabel.processing.resample_to_output``
   (trilinear, ``order=1``), which keeps the orientation and returns the new affine;
4. **intensity**: CT windowing clips to a Hounsfield range and scales it to ``[0, 1]`` (MONAI's
   ``ScaleIntensityRange`` with ``clip=True``); MR z-scoring subtracts the mean and divides by the standard
   deviation of the volume (MONAI's ``NormalizeIntensity``, over non-zero voxels when ``nonzero``);
5. **region of interest**: a centred crop or zero pad to ``size`` (MONAI's ``ResizeWithPadOrCrop``), after an
   optional crop to the foreground bounding box (MONAI's ``CropForeground``).

Nothing here was written by hand where nibabel or MONAI had it; the orientation step is spelled out with
nibabel's functions (instead of ``as_closest_canonical``) because it accepts any target such as ``"LPS"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import nibabel as nib
import numpy as np
from nibabel import orientations
from pydantic import Field

from omnissl.errors import DataError
from omnissl.specs import ComponentConfig


class IntensityConfig(ComponentConfig):
    """Intensity handling.

    Attributes:
        mode: ``"window"`` (CT: clip to ``[low, high]`` HU and scale to ``[0, 1]``), ``"zscore"`` (MR:
            per-volume mean 0 / std 1) or ``"none"`` (default ``"zscore"``).
        low, high: the CT window in HU (defaults -1000 and 1000; -175/250 is the abdominal window that
            SwinUNETR's BTCV pretraining uses).
        nonzero: z-score over non-zero voxels only, leaving the background at zero (default ``False``).
    """

    mode: Literal["window", "zscore", "none"] = "zscore"
    low: float = -1000.0
    high: float = 1000.0
    nonzero: bool = False


class VolumePreprocessing(ComponentConfig):
    """How every NIfTI file becomes one ``(C, D, H, W)`` float32 array.

    Attributes:
        orientation: target axis codes for the voxel axes, e.g. ``"RAS"`` or ``"LPS"`` (default ``"RAS"``;
            ``None`` keeps each file's own orientation).
        spacing: target voxel size in mm per axis, e.g. ``[1.5, 1.5, 2.0]`` (default ``None``: keep the
            file's spacing).
        intensity: see :class:`IntensityConfig`.
        crop_foreground: crop to the bounding box of voxels above ``foreground_threshold`` before sizing
            (default ``False``). foreground_threshold: default 0.0 (after intensity handling).
        size: the region of interest ``[D, H, W]``: centred crop or zero pad to it (default ``[64, 64, 64]``).
    """

    orientation: str | None = "RAS"
    spacing: list[float] | None = None
    intensity: IntensityConfig = IntensityConfig()
    crop_foreground: bool = False
    foreground_threshold: float = 0.0
    size: list[int] = Field(default_factory=lambda: [64, 64, 64], min_length=3, max_length=3)


@dataclass
class LoadedVolume:
    """A preprocessed volume ``array`` ``(C, D, H, W)``, the affine after reorientation and resampling, its spacing."""

    array: np.ndarray
    affine: np.ndarray
    spacing: tuple[float, float, float]
    orientation: str


def read_nifti(path: Path) -> nib.Nifti1Image:
    """Load a NIfTI file; a corrupt or non-volumetric file is a :class:`DataError` naming it."""
    try:
        img = nib.load(str(path))
        shape = img.shape
    except Exception as err:  # nibabel raises several types (ImageFileError, EOFError, zlib.error, ...)
        raise DataError(f"{path}: not a readable NIfTI file ({type(err).__name__}: {err}); re-export it or remove it from the folder") from err
    if len(shape) < 3 or any(s <= 1 for s in shape[:3]):
        raise DataError(f"{path}: shape {tuple(shape)} is not a 3-D volume (need at least 3 spatial axes of size > 1); "
                        "2-D images belong to an image plugin, or stack the slices into one volume")
    if len(shape) > 4 or (len(shape) == 4 and shape[3] > 16):
        raise DataError(f"{path}: shape {tuple(shape)} has a 4th axis of {shape[3] if len(shape) > 3 else '?'}; "
                        "expected a 3-D volume or a few channels (time series are not supported)")
    return img


def reorient(img: nib.Nifti1Image, target: str) -> nib.Nifti1Image:
    """Permute and flip voxel axes so they point along ``target`` (``"RAS"``, ``"LPS"``, ...); the affine follows."""
    if len(target) != 3 or set(target.upper()) - set("RLAPSI"):
        raise DataError(f"orientation {target!r} is not three axis codes from R/L, A/P, S/I (e.g. 'RAS')")
    current = orientations.io_orientation(img.affine)
    wanted = orientations.axcodes2ornt(tuple(target.upper()))
    transform = orientations.ornt_transform(current, wanted)
    data = orientations.apply_orientation(np.asanyarray(img.dataobj), transform)
    affine = img.affine @ orientations.inv_ornt_aff(transform, img.shape)
    return nib.Nifti1Image(data, affine, img.header)


def resample(img: nib.Nifti1Image, spacing: list[float]) -> nib.Nifti1Image:
    """Trilinear resampling to ``spacing`` mm with ``nibabel.processing`` (keeps the axis directions)."""
    from nibabel.processing import resample_from_to

    # resample_to_output would also re-orient to RAS; scale the current affine's columns instead so a chosen
    # orientation survives, and let nibabel do the interpolation
    zooms = np.sqrt((img.affine[:3, :3] ** 2).sum(axis=0))
    new_zooms = np.asarray(spacing, dtype=float)
    shape = np.maximum(1, np.round(np.asarray(img.shape[:3]) * zooms / new_zooms)).astype(int)
    affine = img.affine.copy()
    affine[:3, :3] = img.affine[:3, :3] / zooms * new_zooms
    if img.ndim == 4:
        channels = [resample_from_to(img.slicer[..., c], (tuple(shape), affine), order=1) for c in range(img.shape[3])]
        return nib.Nifti1Image(np.stack([np.asanyarray(c.dataobj) for c in channels], axis=-1), affine)
    return resample_from_to(img, (tuple(shape), affine), order=1)


def preprocess(path: Path, cfg: VolumePreprocessing) -> LoadedVolume:
    """Read, reorient, resample, normalise and size one file: ``LoadedVolume.array`` is ``(C, *cfg.size)``."""
    from monai.transforms import CropForeground, NormalizeIntensity, ResizeWithPadOrCrop, ScaleIntensityRange

    img = read_nifti(path)
    if cfg.orientation:
        img = reorient(img, cfg.orientation)
    if cfg.spacing is not None:
        if len(cfg.spacing) != 3 or min(cfg.spacing) <= 0:
            raise DataError(f"data.preprocessing.spacing must be three positive sizes in mm, got {cfg.spacing}")
        img = resample(img, cfg.spacing)
    try:
        data = np.asanyarray(img.dataobj, dtype=np.float32)
    except Exception as err:
        raise DataError(f"{path}: voxel data cannot be read ({type(err).__name__}: {err}); the file is truncated or corrupt") from err
    array = data[None] if data.ndim == 3 else np.moveaxis(data, -1, 0)
    if not np.isfinite(array).all():
        raise DataError(f"{path}: contains NaN or infinite voxels; fix the file or mask them before loading")
    inten = cfg.intensity
    if inten.mode == "window":
        if inten.high <= inten.low:
            raise DataError(f"data.preprocessing.intensity: window high={inten.high} must exceed low={inten.low}")
        array = ScaleIntensityRange(a_min=inten.low, a_max=inten.high, b_min=0.0, b_max=1.0, clip=True)(array)
    elif inten.mode == "zscore":
        array = NormalizeIntensity(nonzero=inten.nonzero, channel_wise=True)(array)
    if cfg.crop_foreground:
        array = CropForeground(select_fn=lambda x: x > cfg.foreground_threshold, allow_smaller=True)(array)
    array = ResizeWithPadOrCrop(spatial_size=tuple(cfg.size))(array)
    array = np.asarray(array.numpy() if hasattr(array, "numpy") else array, dtype=np.float32)
    zooms = tuple(float(z) for z in np.sqrt((img.affine[:3, :3] ** 2).sum(axis=0)))
    return LoadedVolume(array=array, affine=img.affine, spacing=zooms, orientation="".join(orientations.aff2axcodes(img.affine)))
