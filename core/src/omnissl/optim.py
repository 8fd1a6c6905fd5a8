"""Optimizers: AdamW (fused on CUDA), Adam with coupled L2 decay, SGD with momentum and LARS.

Parameters with fewer than two dimensions (biases, norm scales, tokens of shape ``(D,)``) get no weight
decay and, under LARS, no trust-ratio adaptation — the convention of SimCLR, BYOL and timm. Set
``decay_all_params`` to decay every parameter, as the official GraphMAE, GRACE and GraphCL code does with
``torch.optim.Adam(model.parameters(), weight_decay=...)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from omnissl.specs import ComponentConfig


class OptimizerConfig(ComponentConfig):
    """Optimizer settings.

    Attributes:
        name: ``adamw`` (default), ``adam`` (L2 decay added to the gradient), ``sgd`` or ``lars``.
        lr: peak learning rate (default 1e-3).
        weight_decay: decoupled for AdamW, L2 for SGD/LARS (default 0.05).
        betas: AdamW betas (default (0.9, 0.999)).
        eps: AdamW epsilon (default 1e-8).
        momentum: SGD/LARS momentum (default 0.9).
        trust_coefficient: LARS ``eta`` (default 0.001, You et al. 2017).
        decay_all_params: decay biases and norm parameters too (default False).
    """

    name: Literal["adamw", "adam", "sgd", "lars"] = "adamw"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.05, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    trust_coefficient: float = Field(0.001, gt=0)
    decay_all_params: bool = False


class LARS(torch.optim.Optimizer):
    """Layer-wise adaptive rate scaling (You et al. 2017, "Large Batch Training of Convolutional Networks").

    For a parameter group with ``lars=True``: ``g <- g + wd * w``; ``trust = eta * ||w|| / ||g||`` (1 where
    either norm is 0); ``v <- m * v + lr * trust * g``; ``w <- w - v``. Groups with ``lars=False`` (biases
    and norms) take plain momentum SGD without weight decay. No host synchronisation: the trust ratio stays
    a device tensor.
    """

    def __init__(self, params: Iterable, lr: float, momentum: float = 0.9, weight_decay: float = 0.0, trust_coefficient: float = 0.001):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, trust_coefficient=trust_coefficient, lars=True))

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if group["lars"]:
                    g = g.add(p, alpha=group["weight_decay"])
                    w_norm, g_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(g)
                    trust = torch.where((w_norm > 0) & (g_norm > 0), group["trust_coefficient"] * w_norm / g_norm, torch.ones_like(w_norm))
                    g = g * trust
                state = self.state[p]
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = torch.zeros_like(p)
                buf.mul_(group["momentum"]).add_(g, alpha=group["lr"])
                p.sub_(buf)
        return loss


def param_groups(params: Iterable[tuple[str, nn.Parameter]], weight_decay: float, decay_all: bool = False) -> list[dict]:
    """Split into decayed (``ndim >= 2``, or all with ``decay_all``) and non-decayed parameters; shared ones once."""
    seen: set[int] = set()
    decay, no_decay = [], []
    for _, p in params:
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        (decay if decay_all or p.ndim >= 2 else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay, "lars": True},
        {"params": no_decay, "weight_decay": 0.0, "lars": False},
    ]


def scale_groups(groups: list[dict], lr: float, lr_scale: dict[int, float]) -> list[dict]:
    """Split each group by the learning-rate multiplier of its parameters (``id(p) -> scale``, default 1).

    A group with a multiplier other than 1 gets its own ``lr``; the schedule (``LambdaLR``) scales each
    group's own initial rate, so the ratio holds through warm-up and decay.
    """
    out = []
    for group in groups:
        by_scale: dict[float, list] = {}
        for p in group["params"]:
            by_scale.setdefault(lr_scale.get(id(p), 1.0), []).append(p)
        for scale, params in by_scale.items():
            out.append({**group, "params": params, **({"lr": lr * scale} if scale != 1.0 else {})})
    return out


def build_optimizer(
    cfg: OptimizerConfig, named_params: Iterable[tuple[str, nn.Parameter]], device: torch.device, lr_scale: dict[int, float] | None = None
) -> torch.optim.Optimizer:
    """The optimizer ``cfg`` names over ``named_params``; ``lr_scale`` maps ``id(param)`` to a learning-rate multiplier."""
    groups = [g for g in param_groups(named_params, cfg.weight_decay, cfg.decay_all_params) if g["params"]]
    if lr_scale:
        groups = scale_groups(groups, cfg.lr, lr_scale)
    if cfg.name in ("adamw", "adam"):
        for g in groups:
            g.pop("lars")
        adam = torch.optim.AdamW if cfg.name == "adamw" else torch.optim.Adam
        return adam(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, fused=device.type == "cuda")
    if cfg.name == "sgd":
        for g in groups:
            g.pop("lars")
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    return LARS(groups, lr=cfg.lr, momentum=cfg.momentum, trust_coefficient=cfg.trust_coefficient)
