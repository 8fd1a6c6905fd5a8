"""BYOL's regression loss: normalised mean squared error between prediction and target projection.

Reference: Grill et al., "Bootstrap Your Own Latent", NeurIPS 2020, eq. (2):
``||p/||p|| - z'/||z'|| ||^2 = 2 - 2 cos(p, z')``; the target carries no gradient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class BYOLLoss(nn.Module):
    """Mean over the batch of ``2 - 2 cos(prediction, target.detach())``.

    This is the paper's form (eq. 2, and ``regression_loss`` in the official JAX code): the squared distance
    of the two unit vectors. Libraries that use the negative cosine instead (lightly's
    ``NegativeCosineSimilarity``, SimSiam's ``-cos``) give the same minimiser but half this gradient, so
    learning rates tuned with them are twice too large here (and vice versa). Kept on purpose: the paper's
    learning rates (LARS, 0.2 x batch / 256) were tuned with this loss.

    Shapes:
        ``prediction``, ``target``: ``(B, D)`` -> scalar.
    """

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        if prediction.shape != target.shape or prediction.dim() != 2:
            raise ValueError(f"BYOL needs (B, D) prediction and target of equal shape, got {tuple(prediction.shape)} and {tuple(target.shape)}")
        p = prediction.float()
        z = F.normalize(target.detach().float(), dim=1)
        # cos = (p . z_hat) / |p|: the target's norm carries no gradient, so it is normalised outside the graph
        cos = (p * z).sum(dim=1).div(torch.linalg.vector_norm(p, dim=1).clamp_min(1e-12))
        return torch.rsub(cos.mean(), 2, alpha=2)  # 2 - 2 cos in one op
