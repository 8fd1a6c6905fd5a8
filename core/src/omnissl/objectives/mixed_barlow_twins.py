"""Mixed Barlow Twins objective: Barlow Twins plus the mixup regulariser on a third, mixed input.

Reference: Bandara et al., "Guarding Barlow Twins Against Overfitting with Mixed Samples", 2023; authors'
code github.com/wgcban/mix-bt. The mixed input is ``a * x_a + (1 - a) * x_b[perm]`` with
``a ~ Beta(1, 1)`` (uniform on [0, 1]) and ``perm`` a random permutation of the batch. Inputs must be float
tensors or dicts of tensors (float entries are mixed, others taken from ``x_a``). Under several processes
each process permutes its own samples (the global permutation is block-diagonal) and every process draws
the same ``a`` from a generator seeded with the run seed.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch import Tensor

from omnissl import distributed
from omnissl.interfaces import Encoder, Objective, ObjectiveOutput, Progress, Views
from omnissl.losses.barlow_twins import BarlowTwinsLoss
from omnissl.losses.mixed_barlow_twins import MixedBarlowTwinsRegulariser
from omnissl.nn import MLPHead
from omnissl.objectives._views import StepSeededDraws, two_views
from omnissl.specs import BuildContext, ComponentConfig


class MixedBarlowTwinsConfig(ComponentConfig):
    """``lambda_offdiag`` (0.0051), ``mix_scale`` (1.0, authors' ``mixup_loss_scale``); projector
    ``hidden_dim`` (512), ``proj_dim`` (512), ``proj_layers`` (3)."""

    lambda_offdiag: float = Field(0.0051, ge=0)
    mix_scale: float = Field(1.0, ge=0)
    hidden_dim: int = Field(512, gt=0)
    proj_dim: int = Field(512, gt=0)
    proj_layers: int = Field(3, ge=1)


def mix_inputs(x_a: Any, x_b: Any, alpha: Tensor, perm: Tensor) -> Any:
    """``alpha * x_a + (1 - alpha) * x_b[perm]`` for float tensors, or per float entry of a dict."""
    if isinstance(x_a, Tensor) and x_a.is_floating_point():
        return alpha.to(x_a.dtype) * x_a + (1 - alpha.to(x_a.dtype)) * x_b[perm]
    if isinstance(x_a, dict):
        return {k: mix_inputs(v, x_b[k], alpha, perm) if isinstance(v, Tensor) and v.is_floating_point() else v for k, v in x_a.items()}
    raise ValueError(
        f"Mixed Barlow Twins mixes inputs and needs float tensors or dicts of tensors, got {type(x_a).__name__}; "
        "use core.barlow_twins for this modality"
    )


class MixedBarlowTwinsObjective(Objective):
    """Barlow Twins on two views plus the mixup regulariser on ``x_m``; logs both terms and ``alpha``."""

    def __init__(self, encoder_dim: int, cfg: MixedBarlowTwinsConfig, seed: int = 0):
        super().__init__()
        self.draws = StepSeededDraws(seed)
        self.projector = MLPHead(encoder_dim, cfg.hidden_dim, cfg.proj_dim, num_layers=cfg.proj_layers)
        self.loss = BarlowTwinsLoss(cfg.lambda_offdiag)
        self.mix = MixedBarlowTwinsRegulariser(cfg.lambda_offdiag, cfg.mix_scale)

    def forward(self, encoder: Encoder, views: Views) -> ObjectiveOutput:
        first, second = two_views(views, "Mixed Barlow Twins")
        h_a = encoder(first).pooled
        gen = self.draws.generator(h_a.device)
        local = h_a.shape[0]
        alpha = torch.rand((), generator=gen, device=h_a.device)  # Beta(1, 1) is uniform on [0, 1]
        perm = torch.randperm(local, generator=gen, device=h_a.device)
        z_a = self.projector(h_a)
        z_b = self.projector(encoder(second).pooled)
        z_m = self.projector(encoder(mix_inputs(first, second, alpha, perm)).pooled)
        global_perm = distributed.gather_no_grad(perm + distributed.rank() * local)
        bt = self.loss(z_a, z_b)
        mix = self.mix(z_a, z_b, z_m, alpha, global_perm)
        return ObjectiveOutput(loss=bt + mix, logs={"barlow_twins": bt.detach(), "mixup": mix.detach(), "mix_alpha": alpha})

    def after_step(self, progress: Progress) -> None:
        self.draws.advance(progress.step)

    @classmethod
    def build(cls, cfg: MixedBarlowTwinsConfig, ctx: BuildContext) -> MixedBarlowTwinsObjective:
        return cls(ctx.encoder.output_dim, cfg, seed=ctx.seed)
