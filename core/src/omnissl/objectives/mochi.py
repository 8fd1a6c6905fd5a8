"""MoCHi: contrastive learning with synthesised hard negatives, in-batch (SimCLR) or with a MoCo queue.

Reference: Kalantidis et al., "Hard Negative Mixing for Contrastive Learning", NeurIPS 2020 (built on
MoCo v2: He et al. 2020 / Chen et al. 2020, momentum encoder and a queue of keys). The queue mode is
``core.moco`` (:mod:`omnissl.objectives.moco`) with MoCHi's loss; with ``num_mix = num_query_mix = 0`` it is
exactly MoCo.
"""

from __future__ import annotations

from pydantic import Field
from torch import Tensor

from omnissl.interfaces import Encoder, Objective, ObjectiveOutput, Progress, Views
from omnissl.losses.mochi import MoCHiNTXentLoss, MoCHiQueueLoss
from omnissl.nn import MLPHead
from omnissl.objectives._views import StepSeededDraws, two_views
from omnissl.objectives.moco import MoCoConfig, MoCoObjective
from omnissl.specs import BuildContext, ComponentConfig


class MoCHiConfig(ComponentConfig):
    """MoCHi settings.

    Attributes:
        temperature: InfoNCE temperature (0.2, MoCo v2).
        num_hard: ``N`` hardest negatives mixed (64). num_mix: ``s`` (32). num_query_mix: ``s'`` (16).
        queue_size: 0 uses NT-Xent's in-batch negatives (SimCLR structure); ``> 0`` keeps a MoCo queue of
            that many keys from a momentum encoder (paper: 16384 with N=1024, s=1024, s'=256).
        momentum: momentum-encoder momentum in queue mode (0.99), raised to ``momentum_final`` (0.999)
            along a cosine schedule.
        hidden_dim (512), proj_dim (128), proj_layers (2): the projection head.
    """

    temperature: float = Field(0.2, gt=0)
    num_hard: int = Field(64, ge=1)
    num_mix: int = Field(32, ge=0)
    num_query_mix: int = Field(16, ge=0)
    queue_size: int = Field(0, ge=0)
    momentum: float = Field(0.99, ge=0, le=1)
    momentum_final: float = Field(0.999, ge=0, le=1)
    hidden_dim: int = Field(512, gt=0)
    proj_dim: int = Field(128, gt=0)
    proj_layers: int = Field(2, ge=1)


class MoCHiObjective(Objective):
    """In-batch mode (``queue_size == 0``): project both views; NT-Xent + MoCHi over the global batch.

    Random mixing draws come from :class:`StepSeededDraws`: identical on every process, reproducible on resume.
    :meth:`build` returns :class:`MoCHiMoCoObjective` when ``queue_size > 0``.
    """

    def __init__(self, encoder: Encoder, cfg: MoCHiConfig, seed: int = 0):
        super().__init__()
        if cfg.queue_size:
            raise ValueError("MoCHiObjective is the in-batch mode; use MoCHiMoCoObjective (or build()) for queue_size > 0")
        self.cfg = cfg
        self.draws = StepSeededDraws(seed)
        self.projector = MLPHead(encoder.output_dim, cfg.hidden_dim, cfg.proj_dim, num_layers=cfg.proj_layers)
        self.loss = MoCHiNTXentLoss(cfg.temperature, cfg.num_hard, cfg.num_mix, cfg.num_query_mix)

    def forward(self, encoder: Encoder, views: Views) -> ObjectiveOutput:
        first, second = two_views(views, "MoCHi")
        z_a, z_b = self.projector(encoder(first).pooled), self.projector(encoder(second).pooled)
        loss = self.loss(z_a, z_b, generator=self.draws.generator(z_a.device))
        return ObjectiveOutput(loss=loss, logs={"mochi": loss.detach()})

    def after_step(self, progress: Progress) -> None:
        self.draws.advance(progress.step)

    @classmethod
    def build(cls, cfg: MoCHiConfig, ctx: BuildContext) -> Objective:
        if cfg.queue_size:
            return MoCHiMoCoObjective(ctx.encoder, cfg, seed=ctx.seed)
        return cls(ctx.encoder, cfg, seed=ctx.seed)


class MoCHiMoCoObjective(MoCoObjective):
    """Queue mode (``queue_size > 0``): :class:`omnissl.objectives.moco.MoCoObjective` (momentum encoder,
    first-in first-out key queue) with :class:`MoCHiQueueLoss` mixing hard negatives from the queue."""

    log_name, method = "mochi", "MoCHi"

    def __init__(self, encoder: Encoder, cfg: MoCHiConfig, seed: int = 0):
        moco = MoCoConfig(
            temperature=cfg.temperature, queue_size=max(1, cfg.queue_size), momentum=cfg.momentum,
            momentum_final=cfg.momentum_final, hidden_dim=cfg.hidden_dim, proj_dim=cfg.proj_dim, proj_layers=cfg.proj_layers,
        )
        super().__init__(encoder, moco, MoCHiQueueLoss(cfg.temperature, cfg.num_hard, cfg.num_mix, cfg.num_query_mix))
        self.draws = StepSeededDraws(seed)

    def contrast(self, q: Tensor, k: Tensor, queue: Tensor) -> Tensor:
        return self.loss(q, k, queue, generator=self.draws.generator(q.device))

    def after_step(self, progress: Progress) -> None:
        self.draws.advance(progress.step)
        super().after_step(progress)
