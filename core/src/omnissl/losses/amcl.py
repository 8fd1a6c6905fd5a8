"""AMCL: adaptive multi-head contrastive loss with pair-adaptive temperatures.

Reference: Wang, Koniusz, Gedeon and Zheng, "Adaptive Multi-head Contrastive Learning", ECCV 2024
(arXiv:2310.05615), section 4 and its SimCLR loss; authors' code github.com/LeiWangR/cl (``amcl/losses.py``).

``C`` projection heads each give a pair of views. A small MLP ``phi`` shared by every head maps the
L2-normalised features, and each pair ``(i, k)`` gets its own temperature

    tau_ik = eta + iota * sigmoid(-phi(z_i) . phi(z_k))        (paper's sigma(r) = iota / (1 + e^r) + eta)

so similar (easy) pairs get lower temperatures. Each head contributes an NT-Xent term whose logits are
``sim(z_i, z_k) / tau_ik`` plus ``beta * Omega(tau_ii+)`` on the positive pair's temperature, with
``Omega(tau) = d/2 * log(tau) + 1/tau`` the regulariser that follows from the paper's Gaussian likelihood
(it stops temperatures from running to the bounds). Heads are summed; anchors are averaged over both views.
The denominator is the full log-sum-exp over the ``2G - 2`` in-batch negatives (the paper's formula; the
authors' repository also offers a top-k approximation that we do not use).

Multi-process: features and ``phi`` features are gathered with gradients; each process computes its local
rows against global columns (see :mod:`omnissl.distributed`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from omnissl import distributed
from omnissl.distributed import gather_with_grad


def temperature_regulariser(tau: Tensor, dim: int) -> Tensor:
    """``Omega(tau) = dim/2 * log(tau) + 1/tau`` (minimised at ``tau = 2 / dim``)."""
    return 0.5 * dim * torch.log(tau) + 1.0 / tau


class AdaptiveTemperature(nn.Module):
    """Pair temperatures ``eta + iota * sigmoid(-phi(x) . phi(y))`` in ``(tau_min, tau_max)``.

    Args:
        dim: feature width ``d``. hidden_dim: width of ``phi`` (default ``dim``).
        tau_min: ``eta`` (1e-5). tau_max: ``eta + iota`` (2.0) — the authors' code defaults.
    """

    def __init__(self, dim: int, hidden_dim: int | None = None, tau_min: float = 1e-5, tau_max: float = 2.0):
        super().__init__()
        if not 0 < tau_min < tau_max:
            raise ValueError(f"AMCL needs 0 < tau_min < tau_max, got tau_min={tau_min}, tau_max={tau_max}")
        hidden_dim = hidden_dim or dim
        self.phi = nn.Sequential(nn.Linear(dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, dim))
        self.tau_min, self.tau_max = tau_min, tau_max

    def from_scores(self, scores: Tensor) -> Tensor:
        return self.tau_min + (self.tau_max - self.tau_min) * torch.sigmoid(-scores)


class AMCLLoss(nn.Module):
    """Sum over heads of NT-Xent with pair-adaptive temperatures and the ``beta * Omega`` regulariser.

    Args:
        dim: per-head feature width ``d``.
        beta: regulariser weight (0.01, authors' code). tau_min (1e-5), tau_max (2.0), hidden_dim (``dim``).

    Shapes:
        ``z_a``, ``z_b``: ``(B, C, D)`` (``C`` heads) -> scalar.
    """

    def __init__(self, dim: int, beta: float = 0.01, tau_min: float = 1e-5, tau_max: float = 2.0, hidden_dim: int | None = None):
        super().__init__()
        if beta < 0:
            raise ValueError(f"AMCL beta must be >= 0, got {beta}")
        self.dim, self.beta = dim, beta
        self.temperature = AdaptiveTemperature(dim, hidden_dim, tau_min, tau_max)

    def forward(self, z_a: Tensor, z_b: Tensor) -> Tensor:
        # temperatures down to 1e-5 turn bf16 rounding of similarities into large logit errors: stay in fp32
        with torch.autocast(device_type=z_a.device.type, enabled=False):
            return self._loss(z_a.float(), z_b.float())

    def _loss(self, z_a: Tensor, z_b: Tensor) -> Tensor:
        if z_a.shape != z_b.shape or z_a.dim() != 3 or z_a.shape[-1] != self.dim:
            raise ValueError(
                f"AMCL needs two (B, heads, {self.dim}) tensors of equal shape, got {tuple(z_a.shape)} and {tuple(z_b.shape)}"
            )
        if z_a.shape[0] * distributed.world_size() < 2:
            raise ValueError("AMCL needs at least 2 samples in the global batch to have negatives")
        local, offset = z_a.shape[0], distributed.rank() * z_a.shape[0]
        rows = F.normalize(torch.cat([z_a, z_b], dim=0).float(), dim=-1)  # (2B, C, D)
        phi_rows = self.temperature.phi(rows)
        # one collective for both views and their phi features
        packed = rearrange(torch.cat([rows, phi_rows], dim=-1), "(v b) c e -> b v c e", v=2)
        gathered = rearrange(gather_with_grad(packed), "g v c e -> (v g) c e")  # (2G, C, 2D)
        columns, phi_columns = gathered[..., : self.dim], gathered[..., self.dim :]
        global_n = gathered.shape[0] // 2
        sim = torch.einsum("rcd,kcd->crk", rows, columns)  # (C, 2B, 2G)
        tau = self.temperature.from_scores(torch.einsum("rcd,kcd->crk", phi_rows, phi_columns))
        local_idx = torch.arange(local, device=z_a.device) + offset
        self_idx = torch.cat([local_idx, local_idx + global_n])
        positive_idx = torch.cat([local_idx + global_n, local_idx])
        logits = (sim / tau).masked_fill(F.one_hot(self_idx, 2 * global_n).bool(), float("-inf"))
        heads = logits.shape[0]
        contrast = F.cross_entropy(rearrange(logits, "c r k -> (c r) k"), positive_idx.repeat(heads), reduction="none")
        tau_pos = tau.gather(2, rearrange(positive_idx, "r -> 1 r 1").expand(heads, -1, 1)).squeeze(2)  # (C, 2B)
        per_head = contrast.view(heads, -1) + self.beta * temperature_regulariser(tau_pos, self.dim)
        return per_head.mean(dim=1).sum()
