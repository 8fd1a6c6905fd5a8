"""Fixed sine-cosine position embeddings (Vaswani et al. 2017; I-JEPA's predictor uses them)."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def sincos_positions(num_positions: int, dim: int, device: torch.device | None = None) -> Tensor:
    """``(num_positions, dim)`` table: sin on even channels, cos on odd, base 10000."""
    if dim % 2:
        raise ValueError(f"sin-cos position embeddings need an even dim, got {dim}")
    position = torch.arange(num_positions, dtype=torch.float32, device=device).unsqueeze(1)
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32, device=device) * (-math.log(10000.0) / dim))
    table = torch.zeros(num_positions, dim, device=device)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq)
    return table
