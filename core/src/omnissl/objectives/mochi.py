"""MoCHi: contrastive learning with synthesised hard negatives, in-batch (SimCLR) or with a MoCo queue.

Reference: Kalantidis et al., "Hard Negative Mixing for Contrastive Learning", NeurIPS 2020 (built on
MoCo v2: He et al. 2020 / Chen et al. 2020, momentum encoder and a queue of keys).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from omnissl import distributed
from omnissl.interfaces import Encoder, Objective, ObjectiveOutput, Progress, Views
from omnissl.losses.mochi import MoCHiNTXentLoss, MoCHiQueueLoss
from omnissl.nn import EMATeacher, MLPHead, momentum_schedule
from omnissl.objectives._views import StepSeededDraws, remember_student, two_views
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
    """Project both views; NT-Xent + MoCHi (``queue_size == 0``) or MoCo-v2 + MoCHi with a queue.

    Random mixing draws come from :class:`StepSeededDraws`: identical on every process, reproducible on resume.
    """

    def __init__(self, encoder: Encoder, cfg: MoCHiConfig, seed: int = 0):
        super().__init__()
        self.cfg = cfg
        self.draws = StepSeededDraws(seed)
        self.projector = MLPHead(encoder.output_dim, cfg.hidden_dim, cfg.proj_dim, num_layers=cfg.proj_layers)
        if cfg.queue_size:
            self.loss = MoCHiQueueLoss(cfg.temperature, cfg.num_hard, cfg.num_mix, cfg.num_query_mix)
            self.teacher_encoder = EMATeacher(encoder)
            self.teacher_projector = EMATeacher(self.projector)
            self.register_buffer("queue", F.normalize(torch.randn(cfg.queue_size, cfg.proj_dim), dim=1))
            self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        else:
            self.loss = MoCHiNTXentLoss(cfg.temperature, cfg.num_hard, cfg.num_mix, cfg.num_query_mix)

    def forward(self, encoder: Encoder, views: Views) -> ObjectiveOutput:
        first, second = two_views(views, "MoCHi")
        q = self.projector(encoder(first).pooled)
        gen = self.draws.generator(q.device)
        if not self.cfg.queue_size:
            z_b = self.projector(encoder(second).pooled)
            loss = self.loss(q, z_b, generator=gen)
            return ObjectiveOutput(loss=loss, logs={"mochi": loss.detach()})
        remember_student(self, encoder)
        with torch.no_grad():
            k = self.teacher_projector(self.teacher_encoder(second).pooled)
        loss = self.loss(q, k, self.queue.clone(), generator=gen)
        self._enqueue(F.normalize(k.float(), dim=1))
        return ObjectiveOutput(loss=loss, logs={"mochi": loss.detach()})

    @torch.no_grad()
    def _enqueue(self, keys: torch.Tensor) -> None:
        keys = distributed.gather_no_grad(keys)[-self.queue.shape[0]:]
        idx = (self.queue_ptr + torch.arange(keys.shape[0], device=keys.device)) % self.queue.shape[0]
        self.queue.index_copy_(0, idx, keys.to(self.queue.dtype))
        self.queue_ptr.add_(keys.shape[0]).remainder_(self.queue.shape[0])

    def after_step(self, progress: Progress) -> None:
        self.draws.advance(progress.step)
        student = self.__dict__.get("_student")
        if not self.cfg.queue_size or student is None:
            return
        m = momentum_schedule(self.cfg.momentum, self.cfg.momentum_final, progress.fraction, "cosine")
        self.teacher_encoder.update(student, m)
        self.teacher_projector.update(self.projector, m)

    @classmethod
    def build(cls, cfg: MoCHiConfig, ctx: BuildContext) -> MoCHiObjective:
        return cls(ctx.encoder, cfg, seed=ctx.seed)


