"""Video data sources: a user's folder of videos (PyAV) and generated moving digits.

Both yield batches of clips ``(B, C, T, H, W)`` float; labels stay in ``source.labels`` for probes only.

- ``video.folder`` probes every file once at construction (PyAV) and decodes clips per batch in
  :meth:`VideoFolderSource.batch`, which the engine calls in its loader workers (``engine.workers``).
  Training clips have a random start and crop, evaluation clips (:meth:`VideoFolderSource.gather`) a fixed
  one. Unreadable files are skipped with one warning each; more than ``max_bad_fraction`` of them, or no
  video at all, is a :class:`omnissl.errors.DataError`.
- ``video.moving_digits`` draws scikit-learn's 8x8 digits moving across a black canvas; the clips live on
  the device as uint8 and a batch is a gather. Two label sets: ``digit`` and ``direction``.
"""

from __future__ import annotations

import csv
import hashlib
import warnings
from pathlib import Path
from typing import Literal

import av
import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from sklearn.datasets import load_digits
from torch import Tensor

from omnissl.errors import DataError
from omnissl.specs import BuildContext, ComponentConfig
from omnissl_video.decoding import VideoInfo, probe, read_clip

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v")
# VideoMAE normalises inputs with the ImageNet statistics (timm's IMAGENET_DEFAULT_MEAN/STD)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DIRECTIONS = ("right", "left", "down", "up", "down-right", "up-left", "down-left", "up-right")


def raw_pixel_features(clips: Tensor, grid: int = 8) -> Tensor:
    """The raw-pixel baseline: clips averaged over time and area-downsampled to ``grid`` x ``grid``.

    Shapes:
        ``(B, C, T, H, W)`` -> ``(B, C * grid * grid)``.
    """
    return F.adaptive_avg_pool2d(clips.float().mean(dim=2), grid).flatten(1)


def frame_pixel_features(clips: Tensor, frames: int = 4, grid: int = 8) -> Tensor:
    """A stronger surface baseline that keeps time: ``frames`` evenly spaced frames, each ``grid`` x ``grid``.

    Shapes:
        ``(B, C, T, H, W)`` -> ``(B, C * frames * grid * grid)``.
    """
    return F.adaptive_avg_pool3d(clips.float(), (frames, grid, grid)).flatten(1)


# ------------------------------------------------------------------------------------ moving digits
class MovingDigitsConfig(ComponentConfig):
    """Generated clips of one handwritten digit moving in a straight line across a black canvas.

    The digits are the 1,797 8x8 images scikit-learn ships (``load_digits``, no download). Each clip picks
    a digit image, a direction and a start position such that the digit stays on the canvas. Images are
    split 60/20/20 into train/val/test pools, so probes are tested on digit images never seen in training.

    Attributes:
        num_clips: clips to generate (default 2000).
        num_frames: frames per clip (default 8). size: canvas side in pixels (default 32).
        digit_size: side of the digit sprite after bilinear upsampling (default 12).
        speed: pixels per frame along each moving axis (default 1.5).
        directions: 4 (right, left, down, up) or 8 (also the diagonals) (default 4).
        noise: std of Gaussian pixel noise added to every frame, in ``[0, 1]`` units (default 0.0: on a black
            background, per-tube normalised targets would turn noise into unpredictable unit-variance targets).
        pretrain_split: the split pretraining samples (default ``"train"``; ``None``: every clip).
        seed: generation seed (default 0).
    """

    num_clips: int = Field(2000, ge=10)
    num_frames: int = Field(8, ge=2)
    size: int = Field(32, ge=16)
    digit_size: int = Field(12, ge=4)
    speed: float = Field(1.5, ge=0)
    directions: Literal[4, 8] = 4
    noise: float = Field(0.0, ge=0)
    pretrain_split: Literal["train", "val", "test"] | None = "train"
    seed: int = 0


class ClipSource:
    """Clips resident in memory as uint8 ``(N, C, T, H, W)`` (on the device after :meth:`to`).

    ``len(source)`` and :meth:`batch` address the pretraining clips; :meth:`gather` takes absolute clip
    indices (what ``labels`` and ``splits`` refer to) and is what evaluators use.
    """

    def __init__(self, clips: Tensor, labels: dict[str, Tensor], splits: dict[str, Tensor], classes: dict[str, list[str]], pretrain_split: str | None):
        self.clips, self.labels, self.splits, self.classes = clips, labels, splits, classes
        self.pretrain_index = splits[pretrain_split] if pretrain_split else torch.arange(clips.shape[0])

    @property
    def clip_shape(self) -> tuple[int, int, int, int]:
        """``(C, T, H, W)`` of every clip."""
        return tuple(int(s) for s in self.clips.shape[1:])  # type: ignore[return-value]

    def __len__(self) -> int:
        return int(self.pretrain_index.numel())

    def batch(self, indices: Tensor) -> Tensor:
        return self.gather(self.pretrain_index[indices.to(self.pretrain_index.device)])

    def gather(self, idx: Tensor) -> Tensor:
        """Clips ``idx`` as float in ``[0, 1]``: ``(B, C, T, H, W)``."""
        return self.clips[idx.to(self.clips.device)].float().div_(255.0)

    @property
    def num_clips(self) -> int:
        return int(self.clips.shape[0])

    def to(self, device: torch.device | str) -> ClipSource:
        self.clips = self.clips.to(device)
        self.pretrain_index = self.pretrain_index.to(device)
        self.labels = {k: v.to(device) for k, v in self.labels.items()}
        self.splits = {k: v.to(device) for k, v in self.splits.items()}
        return self

    def surface(self) -> dict[str, Tensor]:
        """Surface-feature baselines of every clip, by name (see :func:`raw_pixel_features`)."""
        out: dict[str, list[Tensor]] = {"raw pixels (time mean, 8x8)": [], "raw pixels (4 frames, 8x8)": []}
        for start in range(0, self.num_clips, 256):
            clips = self.gather(torch.arange(start, min(start + 256, self.num_clips)))
            out["raw pixels (time mean, 8x8)"].append(raw_pixel_features(clips))
            out["raw pixels (4 frames, 8x8)"].append(frame_pixel_features(clips))
        return {k: torch.cat(v) for k, v in out.items()}

    def surface_features(self) -> Tensor:
        return self.surface()["raw pixels (time mean, 8x8)"]


def _digit_sprites(size: int) -> tuple[Tensor, Tensor]:
    """scikit-learn's digits upsampled to ``size`` x ``size`` in ``[0, 1]``: ``(1797, size, size)``, labels."""
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32) / 16.0
    sprites = F.interpolate(images[:, None], size=(size, size), mode="bilinear", align_corners=False)[:, 0]
    return sprites.clamp(0, 1), torch.tensor(digits.target, dtype=torch.long)


def moving_digits(cfg: MovingDigitsConfig, ctx: BuildContext | None = None) -> ClipSource:
    """Generate the clips (vectorised over clips and frames; a few seconds for thousands of clips)."""
    if cfg.digit_size >= cfg.size:
        raise DataError(f"data.digit_size={cfg.digit_size} must be smaller than data.size={cfg.size}")
    travel = cfg.speed * (cfg.num_frames - 1)
    if cfg.digit_size + travel > cfg.size:
        raise DataError(
            f"a digit of {cfg.digit_size} px moving {cfg.speed} px/frame for {cfg.num_frames} frames leaves a {cfg.size} px canvas; "
            "lower data.speed or data.num_frames, or raise data.size"
        )
    g = torch.Generator().manual_seed(cfg.seed)
    sprites, digit_of_image = _digit_sprites(cfg.digit_size)
    perm = torch.randperm(sprites.shape[0], generator=g)
    a, b = int(0.6 * len(perm)), int(0.8 * len(perm))
    pools = {"train": perm[:a], "val": perm[a:b], "test": perm[b:]}
    n = cfg.num_clips
    counts = {"train": int(0.6 * n), "val": int(0.2 * n)}
    counts["test"] = n - counts["train"] - counts["val"]
    image = torch.cat([pools[s][torch.randint(len(pools[s]), (counts[s],), generator=g)] for s in ("train", "val", "test")])
    splits, start = {}, 0
    for s in ("train", "val", "test"):
        splits[s] = torch.arange(start, start + counts[s])
        start += counts[s]
    direction = torch.randint(cfg.directions, (n,), generator=g)
    unit = torch.tensor([[1, 0], [-1, 0], [0, 1], [0, -1], [1, 1], [-1, -1], [-1, 1], [1, -1]], dtype=torch.float32)[direction]  # (x, y)
    # start anywhere that keeps the whole path on the canvas
    free = cfg.size - cfg.digit_size - travel * unit.abs()
    origin = torch.rand(n, 2, generator=g) * free + travel * (unit < 0).float()
    t = torch.arange(cfg.num_frames, dtype=torch.float32)
    pos = origin[:, None, :] + cfg.speed * t[None, :, None] * unit[:, None, :]  # (N, T, 2) top-left corner, pixels
    # place each sprite by bilinear sampling: canvas pixel (x, y) reads sprite pixel (x - px, y - py)
    coords = torch.arange(cfg.size, dtype=torch.float32)
    sx = coords[None, None, :] - pos[..., 0:1]  # (N, T, W)
    sy = coords[None, None, :] - pos[..., 1:2]  # (N, T, H)
    norm = lambda s: (s + 0.5) / cfg.digit_size * 2 - 1  # noqa: E731 - pixel centres to grid_sample's [-1, 1]
    grid = torch.stack(torch.broadcast_tensors(norm(sx)[:, :, None, :], norm(sy)[:, :, :, None]), dim=-1)  # (N, T, H, W, 2)
    source = sprites[image][:, None].expand(-1, cfg.num_frames, -1, -1).reshape(n * cfg.num_frames, 1, cfg.digit_size, cfg.digit_size)
    frames = F.grid_sample(source, grid.reshape(n * cfg.num_frames, cfg.size, cfg.size, 2), align_corners=False, padding_mode="zeros")
    frames = frames.reshape(n, cfg.num_frames, cfg.size, cfg.size)
    if cfg.noise:
        frames = frames + cfg.noise * torch.randn(frames.shape, generator=g)
    clips = (frames.clamp(0, 1) * 255).round().to(torch.uint8)[:, None]  # (N, 1, T, H, W)
    labels = {"digit": digit_of_image[image], "direction": direction}
    classes = {"digit": [str(i) for i in range(10)], "direction": list(DIRECTIONS[: cfg.directions])}
    source = ClipSource(clips, labels, splits, classes, cfg.pretrain_split)
    print(
        f"video.moving_digits: {n} clips of {cfg.num_frames}x{cfg.size}x{cfg.size} (1 channel), "
        f"{cfg.directions} directions, splits {counts['train']}/{counts['val']}/{counts['test']}, seed {cfg.seed}"
    )
    return source


# ------------------------------------------------------------------------------------------- folder
class VideoFolderConfig(ComponentConfig):
    """A user's videos: one subfolder per class, or a CSV manifest ``path,label[,start,end]``.

    Attributes:
        path: a folder (``<path>/<class>/<video>``; videos directly under ``path`` get no label) or a CSV
            manifest; a header row naming ``path`` is optional; relative paths are relative to the manifest;
            ``start``/``end`` (seconds) limit where clips are drawn from.
        num_frames: frames per clip (default 16, VideoMAE). stride: temporal stride (default 4, VideoMAE's
            Kinetics recipe; 2 for Something-Something).
        size: crop side after resizing the short side to it (default 224).
        normalize: ``"imagenet"`` (VideoMAE's mean/std) or ``"none"`` (``[0, 1]``) (default ``"imagenet"``).
        max_bad_fraction: the largest share of unreadable files tolerated (default 0.1); above it the run
            stops. pretrain_split: the split pretraining samples (default ``None``: every clip).
        seed: split and clip-sampling seed (default 0).
    """

    path: str | None = None
    num_frames: int = Field(16, ge=1)
    stride: int = Field(4, ge=1)
    size: int = Field(224, ge=8)
    normalize: Literal["imagenet", "none"] = "imagenet"
    max_bad_fraction: float = Field(0.1, ge=0, le=1)
    pretrain_split: Literal["train", "val", "test"] | None = None
    seed: int = 0


def _read_manifest(path: Path) -> list[tuple[Path, str | None, float | None, float | None]]:
    rows = []
    with open(path, newline="") as fh:
        for line_no, row in enumerate(csv.reader(fh), start=1):
            if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                continue
            if line_no == 1 and row[0].strip().lower() == "path":
                continue
            if len(row) not in (1, 2, 4):
                raise DataError(f"{path}, line {line_no}: expected path,label[,start,end], found {len(row)} columns")
            file = Path(row[0].strip())
            file = file if file.is_absolute() else path.parent / file
            label = row[1].strip() if len(row) > 1 and row[1].strip() else None
            seg: list[float | None] = [None, None]
            if len(row) == 4:
                for k, value in enumerate(row[2:4]):
                    try:
                        seg[k] = float(value) if value.strip() else None
                    except ValueError as err:
                        raise DataError(f"{path}, line {line_no}, column {3 + k}: start/end must be seconds, found {value!r}") from err
            rows.append((file, label, seg[0], seg[1]))
    if not rows:
        raise DataError(f"manifest {path} lists no videos; add lines path,label[,start,end]")
    return rows


def _list_folder(folder: Path) -> list[tuple[Path, str | None, float | None, float | None]]:
    rows = []
    for file in sorted(folder.rglob("*")):
        if file.is_file() and file.suffix.lower() in VIDEO_SUFFIXES:
            rel = file.relative_to(folder)
            rows.append((file, rel.parts[0] if len(rel.parts) > 1 else None, None, None))
    return rows


class VideoFolderSource:
    """Videos on disk, decoded per batch with PyAV (in the engine's loader workers when it has them).

    ``batch`` returns training clips (random start and crop, drawn from a generator seeded by the run
    seed and the batch's indices, so a resumed run decodes the same clips); ``gather`` returns evaluation
    clips (centred start, centre crop).
    """

    def __init__(self, infos: list[VideoInfo], segments: list[tuple[float | None, float | None]], labels: dict[str, Tensor],
                 classes: dict[str, list[str]], splits: dict[str, Tensor], cfg: VideoFolderConfig):
        self.infos, self.segments, self.labels, self.classes, self.splits, self.cfg = infos, segments, labels, classes, splits, cfg
        self.pretrain_index = splits[cfg.pretrain_split] if cfg.pretrain_split else torch.arange(len(infos))
        self._failed: set[str] = set()
        self._surface: dict[str, Tensor] | None = None
        self._device = torch.device("cpu")

    @property
    def clip_shape(self) -> tuple[int, int, int, int]:
        return (3, self.cfg.num_frames, self.cfg.size, self.cfg.size)

    @property
    def num_clips(self) -> int:
        return len(self.infos)

    def __len__(self) -> int:
        return int(self.pretrain_index.numel())

    def _normalize(self, clips: Tensor) -> Tensor:
        if self.cfg.normalize == "imagenet":
            mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1, 1)
            std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1, 1)
            clips = (clips - mean) / std
        return clips

    def _read(self, i: int, rng: np.random.Generator | None) -> Tensor:
        info = self.infos[i]
        try:
            return read_clip(info, self.cfg.num_frames, self.cfg.stride, self.cfg.size, rng, self.segments[i])
        except (av.FFmpegError, ValueError, OSError) as err:
            # a file that probed fine can still fail later (truncated stream): one warning, a black clip
            if info.path not in self._failed:
                self._failed.add(info.path)
                warnings.warn(f"video.folder: could not decode {info.path} ({err}); using a black clip for it", stacklevel=2)
            return torch.zeros(self.clip_shape)

    def batch(self, indices: Tensor) -> Tensor:
        idx = self.pretrain_index[indices.cpu()]
        digest = hashlib.blake2b(idx.numpy().tobytes(), digest_size=8).digest()
        rng = np.random.default_rng([self.cfg.seed, int.from_bytes(digest, "little")])
        return self._normalize(torch.stack([self._read(int(i), rng) for i in idx])).to(self._device)

    def gather(self, idx: Tensor) -> Tensor:
        return self._normalize(torch.stack([self._read(int(i), None) for i in idx.cpu()])).to(self._device)

    def to(self, device: torch.device | str) -> VideoFolderSource:
        # clips are decoded per batch on the CPU; only labels, splits and batches move
        self._device = torch.device(device)
        self.labels = {k: v.to(device) for k, v in self.labels.items()}
        self.splits = {k: v.to(device) for k, v in self.splits.items()}
        return self

    def surface(self) -> dict[str, Tensor]:
        if self._surface is None:
            raw, frames = [], []
            for start in range(0, self.num_clips, 32):
                clips = self.gather(torch.arange(start, min(start + 32, self.num_clips)))
                raw.append(raw_pixel_features(clips))
                frames.append(frame_pixel_features(clips))
            self._surface = {"raw pixels (time mean, 8x8)": torch.cat(raw), "raw pixels (4 frames, 8x8)": torch.cat(frames)}
        return self._surface

    def surface_features(self) -> Tensor:
        return self.surface()["raw pixels (time mean, 8x8)"]


def video_folder(cfg: VideoFolderConfig, ctx: BuildContext | None = None) -> VideoFolderSource:
    if cfg.path is None:
        raise DataError("video.folder: set data.path to a folder of videos (one subfolder per class) or a CSV manifest")
    root = Path(cfg.path).expanduser()
    if not root.exists():
        raise DataError(f"video.folder: {root} does not exist; set data.path to a folder of videos or a CSV manifest")
    rows = _read_manifest(root) if root.is_file() else _list_folder(root)
    if not rows:
        raise DataError(f"video.folder: no videos ({', '.join(VIDEO_SUFFIXES)}) under {root}; check data.path")
    infos, segments, names, bad = [], [], [], []
    for file, label, start, end in rows:
        try:
            info = probe(file)
        except (av.FFmpegError, ValueError, OSError) as err:
            bad.append(str(file))
            warnings.warn(f"video.folder: skipping {file}: cannot read it as video ({err})", stacklevel=2)
            continue
        infos.append(info)
        segments.append((start, end))
        names.append(label)
    share = len(bad) / len(rows)
    if not infos or share > cfg.max_bad_fraction:
        raise DataError(
            f"video.folder: {len(bad)} of {len(rows)} files under {root} are unreadable ({share:.0%} > data.max_bad_fraction="
            f"{cfg.max_bad_fraction:.0%}), e.g. {bad[:3]}; fix or remove them, or raise data.max_bad_fraction"
        )
    labels, classes = {}, {}
    if all(n is not None for n in names):
        classes["label"] = sorted(set(names))  # type: ignore[type-var]
        labels["label"] = torch.tensor([classes["label"].index(n) for n in names])
    elif any(n is not None for n in names):
        raise DataError(f"video.folder: some videos under {root} have a class and others do not; put every video in a class subfolder")
    perm = torch.randperm(len(infos), generator=torch.Generator().manual_seed(cfg.seed))
    a, b = int(0.6 * len(perm)), int(0.8 * len(perm))
    splits = {"train": perm[:a], "val": perm[a:b], "test": perm[b:]} if len(infos) >= 5 else {}
    if cfg.pretrain_split and cfg.pretrain_split not in splits:
        raise DataError(f"video.folder: data.pretrain_split={cfg.pretrain_split!r} needs at least 5 videos for a split; set it to null")
    source = VideoFolderSource(infos, segments, labels, classes, splits, cfg)
    frames = sum(i.frames for i in infos)
    summary = f", {len(classes['label'])} classes" if classes else ", no labels"
    print(f"video.folder: {len(infos)} videos from {root} ({frames} frames{summary}, {len(bad)} skipped), clips of "
          f"{cfg.num_frames} frames every {cfg.stride} at {cfg.size}x{cfg.size}")
    return source


def write_example_folder(folder: Path) -> dict:
    """A tiny real video folder for the contract suite and smoke tests: two class subfolders of two mp4 clips each
    (24 frames of 32x32, a bright square moving right or down), encoded with PyAV; returns ``video.folder`` params."""
    from omnissl_video.decoding import write_video

    for label, (dy, dx) in {"right": (0, 1), "down": (1, 0)}.items():
        (folder / label).mkdir(parents=True, exist_ok=True)
        for k in range(2):
            frames = np.zeros((24, 32, 32, 3), dtype=np.uint8)
            for t in range(24):
                y, x = 4 + k + dy * t // 2, 4 + k + dx * t // 2
                frames[t, y : y + 8, x : x + 8] = 255
            write_video(folder / label / f"clip{k}.mp4", frames, fps=12)
    return {"path": str(folder), "num_frames": 8, "stride": 2, "size": 64}
