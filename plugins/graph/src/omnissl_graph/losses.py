"""Scaled cosine error (SCE), GraphMAE's reconstruction loss.

Reference: Hou et al., "GraphMAE: Self-Supervised Masked Graph Autoencoders", KDD 2022, eq. (2); official
code github.com/THUDM/GraphMAE ``graphmae/models/loss_func.py`` (``sce_loss``).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class ScaledCosineError(nn.Module):
    """``L = mean_i (1 - cos(x_i, z_i)) ** gamma`` over the rows given (the masked nodes).

    ``gamma >= 1`` down-weights easy rows (cosine close to 1), the paper's "scaling factor".

    Args:
        gamma: the exponent (GraphMAE ``alpha_l``; Cora 3, MUTAG 2, PROTEINS 1). Default 2.

    Shapes:
        ``recon``, ``target``: ``(M, F)`` -> scalar.

    Example::

        >>> sce = ScaledCosineError(gamma=3)
        >>> float(sce(torch.ones(2, 3), torch.ones(2, 3)))
        0.0
    """

    def __init__(self, gamma: float = 2.0):
        super().__init__()
        if gamma < 1:
            raise ValueError(f"scaled cosine error needs gamma >= 1 (the paper's alpha_l), got {gamma}")
        self.gamma = gamma

    def forward(self, recon: Tensor, target: Tensor) -> Tensor:
        if recon.shape != target.shape:
            raise ValueError(f"SCE needs equal shapes, got {tuple(recon.shape)} and {tuple(target.shape)}")
        cos = (F.normalize(recon.float(), dim=-1) * F.normalize(target.float(), dim=-1)).sum(dim=-1)
        return (1 - cos).pow(self.gamma).mean()
