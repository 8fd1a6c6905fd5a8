"""Data sources that live in memory (on the device once moved) and helpers to encode a whole source."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from omnissl.device import move_to_device


class TensorSource:
    """A data source over one tensor (or a dict of tensors) indexed along dim 0.

    Args:
        data: ``(N, ...)`` tensor, or a dict of such tensors collated by indexing each.
        labels: per-sample targets for probes, by name.
        splits: index tensors by split name (``train``/``val``/``test``).
    """

    def __init__(self, data: Tensor | dict[str, Tensor], labels: dict[str, Tensor] | None = None, splits: dict[str, Tensor] | None = None):
        self.data = data
        self.labels = labels or {}
        self.splits = splits or {}

    def __len__(self) -> int:
        first = next(iter(self.data.values())) if isinstance(self.data, dict) else self.data
        return int(first.shape[0])

    def batch(self, indices: Tensor) -> Any:
        if isinstance(self.data, dict):
            return {k: v[indices] for k, v in self.data.items()}
        return self.data[indices]

    def to(self, device: torch.device) -> TensorSource:
        self.data = move_to_device(self.data, device)
        self.labels = move_to_device(self.labels, device)
        self.splits = move_to_device(self.splits, device)
        return self

    def surface_features(self) -> Tensor:
        if isinstance(self.data, dict):
            return torch.cat([v.flatten(1).float() for v in self.data.values()], dim=1)
        return self.data.flatten(1).float()


@torch.no_grad()
def encode_all(encoder: torch.nn.Module, source: Any, batch_size: int = 1024, device: torch.device | str | None = None) -> Tensor:
    """Pooled representations of every sample of ``source`` in index order: ``(len(source), D)``.

    Node-level sources (one graph, ``len == 1``) return one row per node.
    """
    was_training = encoder.training
    encoder.eval()
    device = device or next(encoder.parameters()).device
    out = []
    for start in range(0, len(source), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(source)), device=device)
        out.append(encoder(move_to_device(source.batch(idx), device)).pooled.float())
    encoder.train(was_training)
    return torch.cat(out, dim=0)
