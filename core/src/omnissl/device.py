"""Moving arbitrary batch structures to a device."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import torch

T = TypeVar("T")


def move_to_device(obj: T, device: torch.device | str, non_blocking: bool = True) -> T:
    """Return ``obj`` with every tensor moved to ``device``.

    Handles tensors, mappings, lists and tuples (named tuples too), dataclasses, and any object with a
    ``.to(device)`` method (PyG ``Data``/``Batch``, data sources). Other values are returned unchanged.
    """
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=non_blocking)  # type: ignore[return-value]
    if isinstance(obj, Mapping):
        return type(obj)({k: move_to_device(v, device, non_blocking) for k, v in obj.items()})  # type: ignore[call-arg]
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(move_to_device(v, device, non_blocking) for v in obj))  # type: ignore[return-value]
    if isinstance(obj, Sequence) and not isinstance(obj, (str, bytes)):
        return type(obj)(move_to_device(v, device, non_blocking) for v in obj)  # type: ignore[call-arg]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes = {f.name: move_to_device(getattr(obj, f.name), device, non_blocking) for f in dataclasses.fields(obj) if f.init}
        return dataclasses.replace(obj, **changes)  # type: ignore[return-value]
    to = getattr(obj, "to", None)
    if callable(to):
        return to(device)
    return obj
