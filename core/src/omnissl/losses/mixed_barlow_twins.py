"""Mixed Barlow Twins: a mixup regulariser on the cross-correlation.

Reference: Bandara, Patel et al., "Guarding Barlow Twins Against Overfitting with Mixed Samples", 2023
(arXiv:2312.02151); authors' code github.com/wgcban/mix-bt (``main.py``). A mixed input
``x_m = a * x_a + (1 - a) * x_b[perm]`` with ``a ~ Beta(1, 1)`` should have, by linearity, the
cross-correlations ``C(m, a) = a * C(a, a) + (1 - a) * C(b[perm], a)`` and
``C(m, b) = a * C(a, b) + (1 - a) * C(b[perm], b)``. The regulariser is
``scale * lambda * (||C(m,a) - gt_a||^2 + ||C(m,b) - gt_b||^2)``; the authors standardise with the
unbiased std (no eps), which we follow here.
"""

from __future__ import annotations

from torch import Tensor, nn

from omnissl.distributed import gather_with_grad
from omnissl.losses.barlow_twins import _check_pair


def _standardise(z: Tensor) -> Tensor:
    return (z - z.mean(dim=0)) / z.std(dim=0)


class MixedBarlowTwinsRegulariser(nn.Module):
    """The mixup term of Mixed Barlow Twins (add it to :class:`BarlowTwinsLoss`).

    Args:
        lambda_offdiag: Barlow Twins' ``lambda`` (0.0051). scale: ``mixup_loss_scale`` (1.0, authors' code).

    Shapes:
        ``z_a``, ``z_b``, ``z_m``: ``(B, D)``; ``alpha``: scalar tensor; ``perm``: ``(G,)`` long over the
        global batch -> scalar.
    """

    def __init__(self, lambda_offdiag: float = 0.0051, scale: float = 1.0):
        super().__init__()
        if lambda_offdiag < 0 or scale < 0:
            raise ValueError(f"Mixed Barlow Twins needs lambda >= 0 and scale >= 0, got {lambda_offdiag}, {scale}")
        self.lambda_offdiag, self.scale = lambda_offdiag, scale

    def forward(self, z_a: Tensor, z_b: Tensor, z_m: Tensor, alpha: Tensor, perm: Tensor) -> Tensor:
        _check_pair("Mixed Barlow Twins", z_a, z_b)
        _check_pair("Mixed Barlow Twins", z_a, z_m)
        a, b, m = (_standardise(gather_with_grad(z.float())) for z in (z_a, z_b, z_m))
        n = a.shape[0]
        b_perm = b[perm]
        c_ma, c_mb = m.T @ a / n, m.T @ b / n
        gt_a = alpha * (a.T @ a) / n + (1 - alpha) * (b_perm.T @ a) / n
        gt_b = alpha * (a.T @ b) / n + (1 - alpha) * (b_perm.T @ b) / n
        return self.scale * self.lambda_offdiag * ((c_ma - gt_a).pow(2).sum() + (c_mb - gt_b).pow(2).sum())
