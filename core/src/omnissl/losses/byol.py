"""BYOL's regression loss: normalised mean squared error between prediction and target projection.

Reference: Grill et al., "Bootstrap Your Own Latent", NeurIPS 2020, eq. (2):
``||p/||p|| - z'/||z'|| ||^2 = 2 - 2 cos(p, z')``; the target carries no gradient.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class BYOLLoss(nn.Module):
    """Mean over the batch of ``2 - 2 cos(prediction, target.detach())``.

    Shapes:
        ``prediction``, ``target``: ``(B, D)`` -> scalar.
    """

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        if prediction.shape != target.shape or prediction.dim() != 2:
            raise ValueError(f"BYOL needs (B, D) prediction and target of equal shape, got {tuple(prediction.shape)} and {tuple(target.shape)}")
        p = F.normalize(prediction.float(), dim=1)
        z = F.normalize(target.detach().float(), dim=1)
        return (2 - 2 * (p * z).sum(dim=1)).mean()
