"""Clip decoding with PyAV and VideoMAE's clip sampling.

VideoMAE (Tong et al. 2022, ``kinetics.py`` / ``ssv2.py`` of the official code) samples ``num_frames``
frames ``stride`` apart from a random start in training and from a fixed start for evaluation, resizes the
short side and crops ``size`` x ``size`` (random crop in training, centre crop for evaluation). Decoding is
PyAV's (FFmpeg); this module only chooses frame indices and reshapes.

Shapes:
    :func:`read_clip` returns ``(C=3, T, size, size)`` float in ``[0, 1]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class VideoInfo:
    """What probing a file found: its frame count and average frame rate (frames per second)."""

    path: str
    frames: int
    fps: float


def probe(path: str | Path) -> VideoInfo:
    """Open ``path``, check it has a decodable video stream and count its frames.

    The container's frame count is used when it has one; otherwise (some webm/mkv) every frame is
    decoded once to count. Raises ``av.FFmpegError``/``ValueError`` for files that cannot be read.
    """
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        fps = float(stream.average_rate) if stream.average_rate else 25.0
        frames = int(stream.frames or 0)
        first = next(container.decode(stream), None)
        if first is None:
            raise ValueError("no decodable frame")
    if frames <= 0:
        with av.open(str(path)) as container:
            frames = sum(1 for _ in container.decode(video=0))
    return VideoInfo(path=str(path), frames=frames, fps=fps)


def clip_indices(num_frames: int, stride: int, total: int, start: int) -> np.ndarray:
    """Frame indices ``start, start + stride, ...``; clips longer than the video repeat its last frame."""
    return np.minimum(start + stride * np.arange(num_frames), max(total - 1, 0))


def clip_start(total: int, num_frames: int, stride: int, rng: np.random.Generator | None, first: int = 0, last: int | None = None) -> int:
    """A random start (``rng`` given, training) or the centred start (evaluation) within ``[first, last)``."""
    last = total if last is None else min(last, total)
    span = max(1, last - first)
    room = max(0, span - (num_frames - 1) * stride - 1)
    offset = int(rng.integers(0, room + 1)) if rng is not None else room // 2
    return first + offset


def decode_frames(path: str, indices: np.ndarray, short_side: int | None = None) -> np.ndarray:
    """Decode the frames at ``indices`` (sorted, may repeat) as ``(T, H, W, 3)`` uint8 RGB.

    A clip that starts past the file's first frames is reached by seeking: the demuxer jumps to the key frame
    at or before the clip's first frame (FFmpeg ``av_seek_frame`` backward), and each decoded frame's index is
    read from its presentation timestamp, ``round((pts - start_time) * time_base * fps)``, as decord and
    torchvision's ``read_video`` do. Only the frames from that key frame on are decoded, instead of every
    frame from the start of the file: for a 10-second clip source that is most of the decoding. Where the
    stream has no timestamps, or the seek lands past the clip (a broken index), decoding starts over from the
    first frame and counts frames in order. Decoding stops after the last wanted index.

    ``short_side``: convert the wanted frames to RGB with their short side at that length (the size
    :func:`resize_crop` would give) in the same FFmpeg call (swscale, bilinear), instead of converting at full
    resolution and resizing after; the caller then only crops.
    """
    wanted = {int(i) for i in indices}
    first, last = min(wanted), max(wanted)
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        size = resized_shape(stream.height, stream.width, short_side) if short_side and stream.height and stream.width else None
        found = _decode_from_key_frame(container, stream, wanted, first, last, size) if first > 0 else None
        if found is None:
            container.seek(0)
            found = {}
            for i, frame in enumerate(container.decode(stream)):
                if i in wanted:
                    found[i] = _rgb(frame, size)
                if i >= last:
                    break
    if not found:
        raise ValueError(f"{path}: no frame decoded")
    # a file shorter than its header claims ends early: the clip repeats the last decoded frame
    top = max(found)
    return np.stack([found[min(int(i), top)] if int(i) in found else found[top] for i in indices])


def _rgb(frame: av.VideoFrame, size: tuple[int, int] | None) -> np.ndarray:
    if size is None:
        return frame.to_ndarray(format="rgb24")
    return frame.reformat(width=size[1], height=size[0], format="rgb24", interpolation="BILINEAR").to_ndarray()


def _decode_from_key_frame(container, stream, wanted: set[int], first: int, last: int, size) -> dict[int, np.ndarray] | None:
    """The wanted frames, decoding from the key frame before ``first`` (see :func:`decode_frames`); None: cannot seek."""
    rate, base = stream.average_rate, stream.time_base
    if not rate or not base:
        return None
    origin = stream.start_time or 0
    target = origin + int((first / rate) / base)  # the first wanted frame's timestamp, in stream units
    container.seek(target, backward=True, any_frame=False, stream=stream)
    found: dict[int, np.ndarray] = {}
    for frame in container.decode(stream):
        if frame.pts is None:
            return None
        i = round((frame.pts - origin) * base * rate)
        if not found and i > first:  # landed past the clip: the index is unreliable
            return None
        if i in wanted:
            found[i] = _rgb(frame, size)
        if i >= last:
            break
    return found


def resized_shape(h: int, w: int, size: int) -> tuple[int, int]:
    """``(height, width)`` with the short side at ``size`` (never below it)."""
    scale = size / min(h, w)
    return max(size, round(h * scale)), max(size, round(w * scale))


def resize_crop(frames: Tensor, size: int, rng: np.random.Generator | None) -> Tensor:
    """Short side to ``size`` (bilinear, antialiased), then a random (``rng``) or centre ``size`` crop.

    Shapes:
        ``(T, C, H, W)`` float -> ``(T, C, size, size)``.
    """
    h, w = frames.shape[-2:]
    nh, nw = resized_shape(h, w, size)
    if (nh, nw) != (h, w):
        frames = F.interpolate(frames, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
    top = int(rng.integers(0, nh - size + 1)) if rng is not None else (nh - size) // 2
    left = int(rng.integers(0, nw - size + 1)) if rng is not None else (nw - size) // 2
    return frames[..., top : top + size, left : left + size]


def read_clip(
    info: VideoInfo,
    num_frames: int,
    stride: int,
    size: int,
    rng: np.random.Generator | None = None,
    segment: tuple[float | None, float | None] = (None, None),
) -> Tensor:
    """One clip of ``info.path``: ``(3, num_frames, size, size)`` float in ``[0, 1]``.

    ``rng`` given: random start and random crop (training); ``None``: centred start and centre crop.
    ``segment``: optional ``(start, end)`` in seconds that the clip must come from (manifest columns).
    """
    first = int(segment[0] * info.fps) if segment[0] is not None else 0
    last = int(segment[1] * info.fps) if segment[1] is not None else None
    start = clip_start(info.frames, num_frames, stride, rng, first, last)
    frames = decode_frames(info.path, clip_indices(num_frames, stride, info.frames, start), short_side=size)
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div_(255.0)  # (T, C, H, W)
    return resize_crop(x, size, rng).permute(1, 0, 2, 3).contiguous()


def write_video(path: str | Path, frames: np.ndarray, fps: int = 25, codec: str | None = None) -> Path:
    """Encode ``(T, H, W, 3)`` uint8 frames to ``path`` with PyAV (tests, examples, benchmarks).

    The codec follows the suffix unless given: mp4/mkv/avi -> mpeg4 (in every FFmpeg build), webm -> vp8
    (vp9 where vp8 is missing).
    """
    path = Path(path)
    if codec is None:
        codec = {".webm": "libvpx"}.get(path.suffix.lower(), "mpeg4")
    with av.open(str(path), mode="w") as container:
        try:
            stream = container.add_stream(codec, rate=fps)
        except (av.FFmpegError, ValueError):
            stream = container.add_stream("libvpx-vp9" if codec == "libvpx" else "mpeg4", rate=fps)
        stream.width, stream.height = int(frames.shape[2]), int(frames.shape[1])
        stream.pix_fmt = "yuv420p"
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
