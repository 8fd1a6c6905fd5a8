"""Masked reconstruction losses: MAE's normalised-target MSE, L1 and GraphMAE's scaled cosine error.

References:
- He et al., "Masked Autoencoders Are Scalable Vision Learners", CVPR 2022, section 3 ("normalized pixels as
  targets"); reference code github.com/facebookresearch/mae (``models_mae.py``, ``forward_loss``):
  ``target = (target - mean) / sqrt(var + 1e-6)`` per patch (unbiased ``var``), squared error averaged
  over the feature axis, then over masked tokens.
- Hou et al., "GraphMAE: Self-Supervised Masked Graph Autoencoders", KDD 2022, eq. (5); reference code
  github.com/THUDM/GraphMAE (``sce_loss``): ``mean((1 - cos(x, y))^gamma)``.

Each loss takes ``pred`` and ``target`` of shape ``(..., F)`` and an optional boolean/float ``mask`` of shape
``(...)`` (``True`` where a token counts, e.g. the masked tokens); without a mask every token counts.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def _masked_mean(per_token: Tensor, mask: Tensor | None) -> Tensor:
    if mask is None:
        return per_token.mean()
    if mask.shape != per_token.shape:
        raise ValueError(f"reconstruction mask must have shape {tuple(per_token.shape)}, got {tuple(mask.shape)}")
    weight = mask.to(per_token.dtype)
    return (per_token * weight).sum() / weight.sum().clamp_min(1.0)


def _check(name: str, pred: Tensor, target: Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"{name}: prediction {tuple(pred.shape)} and target {tuple(target.shape)} must have the same shape")


def normalise_patches(target: Tensor, eps: float = 1e-6) -> Tensor:
    """MAE's per-patch target normalisation over the last axis (unbiased variance, ``eps`` 1e-6)."""
    mean = target.mean(dim=-1, keepdim=True)
    var = target.var(dim=-1, keepdim=True)
    return (target - mean) / (var + eps) ** 0.5


class NormalizedMSELoss(nn.Module):
    """Mean squared error to (optionally) per-patch-normalised targets, averaged over masked tokens.

    Args:
        normalize_target: MAE's ``norm_pix_loss`` (True). eps: 1e-6.

    Shapes:
        ``pred``, ``target``: ``(..., F)``; ``mask``: ``(...)`` or ``None`` -> scalar.
    """

    def __init__(self, normalize_target: bool = True, eps: float = 1e-6):
        super().__init__()
        self.normalize_target, self.eps = normalize_target, eps

    def forward(self, pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
        _check("NormalizedMSELoss", pred, target)
        target = target.detach().float()
        if self.normalize_target:
            target = normalise_patches(target, self.eps)
        return _masked_mean((pred.float() - target).pow(2).mean(dim=-1), mask)


class MaskedL1Loss(nn.Module):
    """Mean absolute error averaged over the feature axis, then over masked tokens.

    Shapes:
        ``pred``, ``target``: ``(..., F)``; ``mask``: ``(...)`` or ``None`` -> scalar.
    """

    def forward(self, pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
        _check("MaskedL1Loss", pred, target)
        return _masked_mean((pred.float() - target.detach().float()).abs().mean(dim=-1), mask)


class ScaledCosineError(nn.Module):
    """GraphMAE's scaled cosine error ``mean((1 - cos(pred, target))^gamma)``.

    Args:
        gamma: the scaling exponent (2.0, GraphMAE's ``alpha_l`` default; must be >= 1).

    Shapes:
        ``pred``, ``target``: ``(..., F)``; ``mask``: ``(...)`` or ``None`` -> scalar.
    """

    def __init__(self, gamma: float = 2.0):
        super().__init__()
        if gamma < 1:
            raise ValueError(f"scaled cosine error needs gamma >= 1 (GraphMAE eq. 5), got {gamma}")
        self.gamma = gamma

    def forward(self, pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
        _check("ScaledCosineError", pred, target)
        cos = (F.normalize(pred.float(), dim=-1) * F.normalize(target.detach().float(), dim=-1)).sum(dim=-1)
        return _masked_mean((1 - cos).pow(self.gamma), mask)


def latent_prediction_loss(pred: Tensor, target: Tensor, kind: str = "smooth_l1") -> Tensor:
    """JEPA's loss in latent space: ``"smooth_l1"`` (I-JEPA code) or ``"mse"`` (T-JEPA); target detached."""
    _check("latent prediction", pred, target)
    if kind == "smooth_l1":
        return F.smooth_l1_loss(pred.float(), target.detach().float())
    if kind == "mse":
        return F.mse_loss(pred.float(), target.detach().float())
    raise ValueError(f"unknown latent prediction loss {kind!r}; valid choices: smooth_l1, mse")


__all__ = ["MaskedL1Loss", "NormalizedMSELoss", "ScaledCosineError", "latent_prediction_loss", "normalise_patches"]
