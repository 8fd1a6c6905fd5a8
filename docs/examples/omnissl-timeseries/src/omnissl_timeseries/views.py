"""Jitter-and-scale views (Um et al. 2017's time-series augmentations), batched on the device."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor

from omnissl import ComponentConfig, ViewGenerator, Views


class JitterScaleConfig(ComponentConfig):
    """Gaussian ``jitter`` std (0.1) added per time step, and a per-series ``scale`` factor ~ N(1, 0.2)."""

    jitter: float = Field(0.1, ge=0)
    scale: float = Field(0.2, ge=0)


class JitterScale(ViewGenerator):
    """Two views ``x * s + jitter * noise``; every draw comes from ``generator``, so views are reproducible."""

    def __init__(self, cfg: JitterScaleConfig):
        super().__init__()
        self.cfg = cfg

    def forward(self, batch: Tensor, generator: torch.Generator) -> Views:
        views = []
        for _ in range(2):
            s = 1 + self.cfg.scale * torch.randn(batch.shape[0], 1, generator=generator, device=batch.device)
            noise = torch.randn(batch.shape, generator=generator, device=batch.device)
            views.append(batch * s + self.cfg.jitter * noise)
        return Views(inputs=views, original=batch)
