"""Where a run is in its data: each task's shuffled index stream, and which task each step takes.

Both are pure functions of ``(seed, epoch, cursor)`` and the task sampler's generator, so their
``state_dict`` is all a checkpoint needs for an exact resume, and every process computes the same
answer without communicating (the task agreement under torchrun rests on this).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from omnissl.errors import OmnisslError


class TaskStream:
    """A task's position in its data: shuffled index batches per epoch, this process's share of each.

    ``batch_size`` is the global batch; process ``rank`` of ``world`` takes the ``rank``-th contiguous
    slice, so the union over processes is the one-process batch in the same order.
    """

    def __init__(self, size: int, batch_size: int, seed: int, rank: int, world: int, device: torch.device):
        self.size, self.seed, self.rank, self.world, self.device = size, seed, rank, world, device
        self.global_batch = min(batch_size, size)
        if self.global_batch % world:
            raise OmnisslError(f"batch size {batch_size} (engine.batch_size or tasks[i].batch_size) must be divisible by the number of processes ({world})")
        self.steps_per_epoch = max(1, size // self.global_batch)
        self.epoch, self.cursor = 0, 0
        self._perm: Tensor | None = None

    def _permutation(self) -> Tensor:
        if self._perm is None:
            g = torch.Generator().manual_seed(self.seed * 7919 + self.epoch)
            self._perm = torch.randperm(self.size, generator=g).to(self.device)
        return self._perm

    def next(self) -> Tensor:
        if self.cursor >= self.steps_per_epoch:
            self.epoch, self.cursor, self._perm = self.epoch + 1, 0, None
        local = self.global_batch // self.world
        start = self.cursor * self.global_batch + self.rank * local
        self.cursor += 1
        return self._permutation()[start : start + local]

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "cursor": self.cursor}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.cursor, self._perm = int(state["epoch"]), int(state["cursor"]), None


class CollateDataset(torch.utils.data.Dataset):
    """Lets DataLoader workers call ``source.batch(indices)`` for index tensors the stream produces."""

    def __init__(self, source: Any):
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, indices: Tensor) -> Any:
        return self.source.batch(indices)


class StreamSampler(torch.utils.data.Sampler):
    """Yields the index batches a copy of ``stream`` would produce, so workers can run ahead of the loop."""

    def __init__(self, stream: TaskStream):
        self.stream = stream

    def __iter__(self):
        ahead = TaskStream(self.stream.size, self.stream.global_batch, self.stream.seed, self.stream.rank, self.stream.world, torch.device("cpu"))
        ahead.load_state_dict(self.stream.state_dict())
        while True:
            yield ahead.next()


class TaskSampler:
    """Chooses the task of each step: ``round_robin``, ``proportional`` (to data size) or ``weighted``."""

    def __init__(self, mode: str, names: list[str], sizes: list[int], weights: list[float], seed: int):
        self.mode, self.names, self.count = mode, names, 0
        probs = torch.tensor(sizes if mode == "proportional" else weights, dtype=torch.float64)
        self.probs = probs / probs.sum()
        self.generator = torch.Generator().manual_seed(seed + 104729)

    def next(self) -> str:
        self.count += 1
        if self.mode == "round_robin" or len(self.names) == 1:
            return self.names[(self.count - 1) % len(self.names)]
        return self.names[int(torch.multinomial(self.probs, 1, generator=self.generator))]

    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.count = int(state["count"])
        self.generator.set_state(state["generator"])
