"""Several objectives on one shared encoder: weighted sum or MGDA min-norm weighting.

References: Sener and Koltun, "Multi-Task Learning as Multi-Objective Optimization", NeurIPS 2018 (MGDA with
the gradients w.r.t. the shared parameters, here the encoder's; not their cheaper MGDA-UB bound, which uses
the gradients w.r.t. the shared representation); Ju et al., "Multi-task
Self-supervised Graph Neural Networks Enable Stronger Task Generalization" (ParetoGNN), ICLR 2023.

Each member is a registered objective built with the same context, so any objective can be combined. With
``combine: mgda`` every step computes each member's gradient on the encoder (one extra backward per member),
the Gram matrix, and detached min-norm weights ``alpha`` (logged as ``<member>/alpha``); the loss is
``sum_t alpha_t * w_t * L_t``. Under several processes the member gradients are averaged over processes
first, so every process uses the same weights.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field
from torch import nn

from omnissl import distributed
from omnissl.interfaces import Encoder, Objective, ObjectiveOutput, Progress, Views
from omnissl.losses.mgda import min_norm_weights
from omnissl.specs import BuildContext, ComponentConfig


class MemberConfig(ComponentConfig):
    """One member: registered objective ``name``, its ``weight`` (1.0) and its config ``params`` ({})."""

    name: str
    weight: float = Field(1.0, ge=0)
    params: dict[str, Any] = Field(default_factory=dict)


def _default_members() -> dict[str, MemberConfig]:
    return {"simclr": MemberConfig(name="core.simclr"), "vicreg": MemberConfig(name="core.vicreg")}


class MultiObjectiveConfig(ComponentConfig):
    """``objectives``: members by name (default SimCLR + VICReg); ``combine`` (``sum`` | ``mgda``; sum);
    ``normalize`` the member gradients before MGDA (``none`` | ``l2``; none); ``mgda_iterations`` (50,
    Frank-Wolfe steps for three or more members)."""

    objectives: dict[str, MemberConfig] = Field(default_factory=_default_members)
    combine: Literal["sum", "mgda"] = "sum"
    normalize: Literal["none", "l2"] = "none"
    mgda_iterations: int = Field(50, ge=1)


class MultiObjective(Objective):
    """Named sub-objectives sharing the encoder; see the module docstring for the combination rules."""

    def __init__(self, members: dict[str, Objective], weights: dict[str, float], cfg: MultiObjectiveConfig):
        super().__init__()
        if not members:
            raise ValueError("core.multi needs at least one member objective")
        self.members = nn.ModuleDict(members)
        self.weights = weights
        self.cfg = cfg

    def forward(self, encoder: Encoder, views: Views) -> ObjectiveOutput:
        losses, logs = {}, {}
        for name, member in self.members.items():
            out = member(encoder, views)
            losses[name] = self.weights[name] * out.loss
            logs.update({f"{name}/{k}": v for k, v in out.logs.items()})
            logs[f"{name}/loss"] = out.loss.detach()
        names = list(losses)
        if self.cfg.combine == "sum" or len(names) == 1:
            return ObjectiveOutput(loss=torch.stack([losses[n] for n in names]).sum(), logs=logs)
        alpha = self.mgda_weights(encoder, [losses[n] for n in names])
        for n, a in zip(names, alpha):
            logs[f"{n}/alpha"] = a
        loss = (alpha * torch.stack([losses[n] for n in names])).sum()
        return ObjectiveOutput(loss=loss, logs=logs)

    def mgda_weights(self, encoder: Encoder, losses: list[torch.Tensor]) -> torch.Tensor:
        """Detached min-norm weights over the member gradients w.r.t. the encoder's trainable parameters."""
        shared = [p for p in encoder.parameters() if p.requires_grad]
        if not shared:
            raise ValueError("core.multi with combine: mgda needs an encoder with trainable parameters")
        rows = []
        for loss in losses:
            grads = torch.autograd.grad(loss, shared, retain_graph=True, allow_unused=True)
            rows.append(torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1).float() for g, p in zip(grads, shared)]))
        g = torch.stack(rows)  # (T, P)
        if distributed.world_size() > 1:
            g = distributed.all_reduce_sum(g) / distributed.world_size()
        if self.cfg.normalize == "l2":
            g = g / g.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return min_norm_weights(g @ g.T, self.cfg.mgda_iterations).to(losses[0].dtype).detach()

    def after_step(self, progress: Progress) -> None:
        for member in self.members.values():
            member.after_step(progress)

    @classmethod
    def build(cls, cfg: MultiObjectiveConfig, ctx: BuildContext, registry=None) -> MultiObjective:
        """Build each member from ``registry`` (default: the process-wide plugin manager's)."""
        if registry is None:
            from omnissl.plugins import PluginManager, get_plugin_manager

            # core members need no plugin; skipping entry-point loading saves seconds in tests and tools
            core_only = all(m.name.startswith("core.") for m in cfg.objectives.values())
            registry = PluginManager(autoload=False).registry if core_only else get_plugin_manager().registry
        members, weights = {}, {}
        for name, member in cfg.objectives.items():
            if member.name == "core.multi":
                raise ValueError(f"core.multi member {name!r} cannot itself be core.multi")
            members[name] = registry.get("objectives", member.name).build(member.params, ctx)
            weights[name] = member.weight
        return cls(members, weights, cfg)
