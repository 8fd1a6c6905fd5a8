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


class StepSeededDraws(nn.Module):
    """Random draws that are identical on every process and reproducible after a resume.

    The generator is re-seeded from ``(seed, step, call)`` at each call: ``step`` is set by the owning
    objective's ``after_step`` and saved in checkpoints as a buffer, ``call`` counts forwards within a step
    (gradient accumulation). Re-seeding is a host-side operation, so the step stays free of syncs.
    """

    def __init__(self, seed: int):
        super().__init__()
        self.seed = seed
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self._step, self._calls = 0, 0

    def generator(self, device: torch.device) -> torch.Generator:
        gen = self.__dict__.get("_generator")
        if gen is None or gen.device != device:
            gen = torch.Generator(device=device)
            object.__setattr__(self, "_generator", gen)
        gen.manual_seed((self.seed * 1_000_003 + self._step) * 1_009 + self._calls)
        self._calls += 1
        return gen

    def advance(self, step: int) -> None:
        self._step, self._calls = step, 0
        self.step.fill_(step)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._step, self._calls = int(self.step), 0  # at load time, not in the training step
