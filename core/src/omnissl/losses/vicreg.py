"""VICReg: variance-invariance-covariance regularisation.

Reference: Bardes, Ponce and LeCun, "VICReg", ICLR 2022, eqs. (1)-(6); reference code
github.com/facebookresearch/vicreg (``main_vicreg.py``): invariance ``mse(z_a, z_b)``; variance
``mean(relu(1 - sqrt(var + 1e-4)))`` per view, averaged over the two views; covariance
``sum_{i != j} cov_ij^2 / D`` per view (``cov`` with ``N - 1``), summed; weights 25 / 25 / 1. Embeddings are
gathered over processes with gradients before the statistics, as in the reference code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from omnissl.distributed import gather_with_grad
from omnissl.losses.barlow_twins import _check_pair, off_diagonal


class VICRegLoss(nn.Module):
    """``sim * invariance + var * variance + cov * covariance``.

    Args:
        sim_weight (25.0), var_weight (25.0), cov_weight (1.0), eps (1e-4, inside the square root).

    Shapes:
        ``z_a``, ``z_b``: ``(B, D)`` -> scalar. ``terms(z_a, z_b)`` returns the three unweighted terms.
    """

    def __init__(self, sim_weight: float = 25.0, var_weight: float = 25.0, cov_weight: float = 1.0, eps: float = 1e-4):
        super().__init__()
        if min(sim_weight, var_weight, cov_weight) < 0 or eps <= 0:
            raise ValueError("VICReg weights must be >= 0 and eps > 0")
        self.sim_weight, self.var_weight, self.cov_weight, self.eps = sim_weight, var_weight, cov_weight, eps

    def terms(self, z_a: Tensor, z_b: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        _check_pair("VICReg", z_a, z_b)
        x, y = gather_with_grad(z_a.float()), gather_with_grad(z_b.float())
        invariance = F.mse_loss(x, y)
        x, y = x - x.mean(dim=0), y - y.mean(dim=0)
        std_x, std_y = torch.sqrt(x.var(dim=0) + self.eps), torch.sqrt(y.var(dim=0) + self.eps)
        variance = F.relu(1 - std_x).mean() / 2 + F.relu(1 - std_y).mean() / 2
        n, d = x.shape
        cov_x, cov_y = x.T @ x / (n - 1), y.T @ y / (n - 1)
        covariance = off_diagonal(cov_x).pow(2).sum() / d + off_diagonal(cov_y).pow(2).sum() / d
        return invariance, variance, covariance

    def forward(self, z_a: Tensor, z_b: Tensor) -> Tensor:
        inv, var, cov = self.terms(z_a, z_b)
        return self.sim_weight * inv + self.var_weight * var + self.cov_weight * cov
