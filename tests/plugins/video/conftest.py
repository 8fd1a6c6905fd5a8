import numpy as np
import pytest
import torch

from omnissl_video.decoding import write_video


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


def moving_square(frames: int = 12, size: int = 40, dx: int = 2, color=(255, 64, 0)) -> np.ndarray:
    """``(T, H, W, 3)`` uint8: a 10-pixel square moving ``dx`` pixels per frame to the right."""
    video = np.zeros((frames, size, size + 8, 3), dtype=np.uint8)
    for t in range(frames):
        video[t, 12:22, 2 + dx * t : 12 + dx * t] = color
    return video


@pytest.fixture
def videos(tmp_path):
    """Six real encoded files in two class subfolders (mp4, avi, mkv, webm), written with PyAV."""
    root = tmp_path / "videos"
    for label, color in (("red", (255, 32, 0)), ("blue", (0, 32, 255))):
        (root / label).mkdir(parents=True)
        for k, ext in enumerate(("mp4", "avi", "mkv") if label == "red" else ("webm", "mp4", "avi")):
            write_video(root / label / f"clip{k}.{ext}", moving_square(12 + 2 * k, color=color))
    return root
