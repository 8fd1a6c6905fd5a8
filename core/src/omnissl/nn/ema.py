"""Exponential-moving-average teachers (BYOL, DINO, I-JEPA, T-JEPA, data2vec) and momentum schedules."""

from __future__ import annotations

import copy
import math
from typing import Literal

import torch
from torch import nn


def momentum_schedule(base: float, final: float, fraction: float, kind: Literal["cosine", "linear", "constant"] = "cosine") -> float:
    """Teacher momentum at training ``fraction`` in ``[0, 1]``.

    ``cosine`` is BYOL's ``1 - (1 - base) * (cos(pi * fraction) + 1) / 2`` generalised to end at ``final``;
    ``linear`` is I-JEPA's ``base + (final - base) * fraction``; ``constant`` returns ``base``.
    """
    fraction = min(max(fraction, 0.0), 1.0)
    if kind == "cosine":
        return final - (final - base) * (math.cos(math.pi * fraction) + 1) / 2
    if kind == "linear":
        return base + (final - base) * fraction
    if kind == "constant":
        return base
    raise ValueError(f"unknown momentum schedule {kind!r}; valid choices: cosine, linear, constant")


class EMATeacher(nn.Module):
    """A frozen copy of ``student`` updated as ``teacher = m * teacher + (1 - m) * student``.

    Its parameters have ``requires_grad=False`` so the engine's optimizer never sees them; they are saved
    in checkpoints with the objective that owns the teacher. Buffers (BatchNorm statistics) are copied.
    The teacher always runs in eval mode's autograd-free way: call it inside ``torch.no_grad()``.
    """

    def __init__(self, student: nn.Module):
        super().__init__()
        self.module = copy.deepcopy(student)
        for p in self.module.parameters():
            p.requires_grad_(False)

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    @torch.no_grad()
    def update(self, student: nn.Module, momentum: float) -> None:
        teacher_params = list(self.module.parameters())
        student_params = [p.detach() for p in student.parameters()]
        if len(teacher_params) != len(student_params):
            raise RuntimeError("EMATeacher.update: the student's parameters no longer match the teacher's")
        torch._foreach_lerp_(teacher_params, student_params, 1.0 - momentum)
        for tb, sb in zip(self.module.buffers(), student.buffers()):
            tb.copy_(sb)
