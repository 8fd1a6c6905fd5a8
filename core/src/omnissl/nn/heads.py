"""Projection and prediction heads (SimCLR, BYOL, Barlow Twins, VICReg style MLPs)."""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn


class MLPHead(nn.Module):
    """``num_layers`` linear layers with norm + ReLU between them.

    Args:
        in_dim, hidden_dim, out_dim: widths.
        num_layers: total linear layers (``1`` is a plain linear map; SimCLR uses 2, Barlow Twins 3).
        norm: ``"batch"`` (SimCLR/BYOL/Barlow Twins), ``"layer"`` or ``None`` between layers.
        last_norm: add an affine-free BatchNorm after the last layer (SimCLR v2 / Barlow Twins style).

    Shapes:
        ``(B, in_dim)`` -> ``(B, out_dim)``.
    """

    def __init__(
        self,
        in_dim: int,
        hidden_dim: int,
        out_dim: int,
        num_layers: int = 2,
        norm: Literal["batch", "layer"] | None = "batch",
        last_norm: bool = False,
    ):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"MLPHead needs num_layers >= 1, got {num_layers}")
        layers: list[nn.Module] = []
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            last = i == num_layers - 1
            layers.append(nn.Linear(a, b, bias=not (norm == "batch" and not last)))
            if not last:
                if norm == "batch":
                    layers.append(nn.BatchNorm1d(b))
                elif norm == "layer":
                    layers.append(nn.LayerNorm(b))
                layers.append(nn.ReLU(inplace=True))
        if last_norm:
            layers.append(nn.BatchNorm1d(out_dim, affine=False))
        self.net = nn.Sequential(*layers)
        self.out_dim = out_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
