"""Small helpers shared by the two-view objectives."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from omnissl.interfaces import Views


def two_views(views: Views, method: str) -> tuple[Any, Any]:
    """The two view inputs, or a ValueError naming the method and what the view generator gave."""
    if len(views.inputs) != 2:
        raise ValueError(
            f"{method} needs exactly two views, the view generator gave {len(views.inputs)}; "
            "use a view generator with num_views: 2"
        )
    return views.inputs[0], views.inputs[1]


def remember_student(objective: nn.Module, encoder: nn.Module) -> None:
    """Keep a reference to the live encoder for ``after_step`` without registering it as a submodule."""
    object.__setattr__(objective, "_student", encoder)


def device_generator(objective: nn.Module, device: torch.device, seed: int) -> torch.Generator:
    """A generator on ``device``, created once and seeded identically on every process (same draws)."""
    gen = objective.__dict__.get("_generator")
    if gen is None or gen.device != device:
        gen = torch.Generator(device=device).manual_seed(seed)
        object.__setattr__(objective, "_generator", gen)
    return gen
