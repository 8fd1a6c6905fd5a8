"""AMCL: adaptive multi-head contrastive loss with pair-adaptive temperatures.

Reference: Wang, Koniusz, Gedeon and Zheng, "Adaptive Multi-head Contrastive Learning", ECCV 2024
(arXiv:2310.05615), eqs. (2.1) and (5); authors' code github.com/LeiWangR/cl, ``amcl/losses.py`` (commit
755799d), classes ``TemperatureHead`` and ``AMCLNTXentLoss``.

``C`` projection heads each give a pair of views. A small MLP ``phi`` shared by every head maps the
L2-normalised features, and each pair ``(i, k)`` gets its own temperature

    tau_ik = eta + iota * sigmoid(-phi(z_i) . phi(z_k))        (paper's sigma(r) = iota / (1 + e^r) + eta)

so similar (easy) pairs get lower temperatures. The regulariser that follows from the paper's likelihood is
``+ beta * Omega(tau_pos)`` on the positive pair, ``Omega(tau) = d/2 * log(tau) + 1/tau``, and
``- beta * sum_k (log tau_ik + 1/tau_ik)`` over the anchor's negatives (the authors' ``reg_neg``, subtracted).
Heads are summed; anchors are averaged over both views (the authors' two directions). Two variants:

- ``negatives="all"`` (default): the paper's eq. (2.1) with the full NT-Xent denominator, ``-log softmax`` of
  ``sim / tau`` over the positive and the ``2G - 2`` in-batch negatives, and the negative regulariser summed
  over all of them.
- ``negatives="topk"``: exactly the authors' ``AMCLNTXentLoss._direction`` (their eq. (5) approximation, what
  their experiments run): per anchor ``-sim_pos / tau_pos + mean_k(sim_k / tau_k) + beta * Omega(tau_pos)
  - beta * sum_k (log tau_k + 1/tau_k)`` over the ``k`` (100) negatives of highest similarity. No softmax:
  the negative term is a plain mean, as in their code.

Multi-process: features and ``phi`` features are gathered with gradients; each process computes its local
rows against global columns (see :mod:`omnissl.distributed`); top-k runs over the global negatives.
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
    """Sum over heads of NT-Xent with pair-adaptive temperatures and the ``beta`` temperature regularisers.

    Args:
        dim: per-head feature width ``d``.
        beta: regulariser weight (0.01, authors' code). tau_min (1e-5), tau_max (2.0), hidden_dim (``dim``).
        negatives: ``"all"`` (paper, full denominator; default) or ``"topk"`` (the authors' code).
        topk: negatives kept per anchor in ``"topk"`` mode (100, authors' default).

    Shapes:
        ``z_a``, ``z_b``: ``(B, C, D)`` (``C`` heads) -> scalar.
    """

    def __init__(
        self, dim: int, beta: float = 0.01, tau_min: float = 1e-5, tau_max: float = 2.0, hidden_dim: int | None = None,
        negatives: str = "all", topk: int = 100,
    ):
        super().__init__()
        if beta < 0:
            raise ValueError(f"AMCL beta must be >= 0, got {beta}")
        if negatives not in ("all", "topk"):
            raise ValueError(f"unknown AMCL negatives {negatives!r}; valid choices: all, topk")
        if topk < 1:
            raise ValueError(f"AMCL topk must be >= 1, got {topk}")
        self.dim, self.beta, self.negatives, self.topk = dim, beta, negatives, topk
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
        is_self = F.one_hot(self_idx, 2 * global_n).bool()  # (2B, 2G)
        is_negative = ~(is_self | F.one_hot(positive_idx, 2 * global_n).bool())
        heads = sim.shape[0]
        pick = rearrange(positive_idx, "r -> 1 r 1").expand(heads, -1, 1)
        tau_pos = tau.gather(2, pick).squeeze(2)  # (C, 2B)
        positive_reg = self.beta * temperature_regulariser(tau_pos, self.dim)
        if self.negatives == "all":
            logits = (sim / tau).masked_fill(is_self, float("-inf"))
            contrast = F.cross_entropy(rearrange(logits, "c r k -> (c r) k"), positive_idx.repeat(heads), reduction="none")
            negative_reg = (torch.log(tau) + 1.0 / tau).masked_fill(~is_negative, 0.0).sum(dim=2)
            per_row = contrast.view(heads, -1) + positive_reg - self.beta * negative_reg
        else:
            k = min(self.topk, 2 * global_n - 2)
            values, idx = sim.masked_fill(~is_negative, float("-inf")).topk(k, dim=2)
            tau_top = tau.gather(2, idx)
            sim_pos = sim.gather(2, pick).squeeze(2)
            negative_reg = (torch.log(tau_top) + 1.0 / tau_top).sum(dim=2)
            per_row = -sim_pos / tau_pos + (values / tau_top).mean(dim=2) + positive_reg - self.beta * negative_reg
        return per_row.mean(dim=1).sum()
