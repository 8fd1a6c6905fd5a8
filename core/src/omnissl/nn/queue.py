"""A first-in first-out feature queue: MoCo's dictionary of keys and SwAV's queue of past embeddings.

References: He et al., "Momentum Contrast for Unsupervised Visual Representation Learning" (MoCo), CVPR 2020,
section 3.2 (``_dequeue_and_enqueue`` in github.com/facebookresearch/moco: a ring buffer of keys, initialised
with random unit vectors, the oldest batch replaced by the newest); Caron et al., SwAV, NeurIPS 2020, section
4.3 (github.com/facebookresearch/swav ``main_swav.py``: a queue of the assignment crops' embeddings of earlier
batches, started empty and used once it holds real features).

The write position and the fill level are host integers mirrored into buffers (so checkpoints carry them and a
resumed run continues exactly): enqueueing never reads a value back from the device. Written by hand because
neither torch nor the field's libraries ship a checkpointable, sync-free queue (lightly's memory bank reads its
pointer from the device on every update).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from omnissl import distributed


class FeatureQueue(nn.Module):
    """``size`` rows of width ``dim``, replaced first-in first-out.

    Args:
        size: rows kept (MoCo: 65536; SwAV: 3840 on ImageNet). dim: feature width.
        init: ``"random"`` fills the queue with random unit vectors that count as present from the start
            (MoCo); ``"empty"`` starts with nothing (SwAV), so :attr:`filled` grows with each push.
        gather: concatenate the pushed rows over processes first (every process keeps the same queue).

    Shapes:
        :meth:`push` takes ``(B, dim)``; :meth:`values` returns ``(filled, dim)``; :meth:`ordered` returns the
        same rows oldest first.
    """

    def __init__(self, size: int, dim: int, init: Literal["random", "empty"] = "random", gather: bool = True):
        super().__init__()
        if size < 1 or dim < 1:
            raise ValueError(f"FeatureQueue needs size >= 1 and dim >= 1, got size={size}, dim={dim}")
        if init not in ("random", "empty"):
            raise ValueError(f"unknown FeatureQueue init {init!r}; valid choices: random, empty")
        start = F.normalize(torch.randn(size, dim), dim=1) if init == "random" else torch.zeros(size, dim)
        self.register_buffer("features", start)
        # total rows ever written, and rows present (the random start counts as present)
        self.register_buffer("written", torch.zeros((), dtype=torch.long))
        self.register_buffer("present", torch.tensor(size if init == "random" else 0, dtype=torch.long))
        self.gather = gather
        self._written, self._present = 0, size if init == "random" else 0

    @property
    def size(self) -> int:
        return self.features.shape[0]

    @property
    def filled(self) -> int:
        """Rows that hold features (a host integer: no device read)."""
        return self._present

    @property
    def full(self) -> bool:
        return self._present == self.size

    def values(self) -> Tensor:
        """A copy of the present rows in storage order (a copy: autograd may keep it while :meth:`push` writes)."""
        return (self.features[: self._present] if self._present < self.size else self.features).clone()

    def ordered(self) -> Tensor:
        """The present rows from oldest to newest."""
        if self._present < self.size:
            return self.features[: self._present]
        start = self._written % self.size
        return torch.cat([self.features[start:], self.features[:start]])

    @torch.no_grad()
    def push(self, rows: Tensor) -> None:
        """Write ``rows`` (gathered over processes when ``gather``) over the oldest entries."""
        if rows.dim() != 2 or rows.shape[1] != self.features.shape[1]:
            raise ValueError(f"FeatureQueue of width {self.features.shape[1]} got rows of shape {tuple(rows.shape)}")
        if self.gather:
            rows = distributed.gather_no_grad(rows)
        rows = rows.detach().to(self.features.dtype)[-self.size :]
        n, start = rows.shape[0], self._written % self.size
        first = min(n, self.size - start)
        self.features[start : start + first] = rows[:first]
        if first < n:
            self.features[: n - first] = rows[first:]
        self._written += n
        self._present = min(self.size, self._present + n)
        self.written.fill_(self._written)
        self.present.fill_(self._present)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._written, self._present = int(self.written), int(self.present)  # at load time, not in the step
