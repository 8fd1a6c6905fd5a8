"""MoCo: a query encoder, a momentum key encoder and a first-in first-out queue of keys, trained with InfoNCE.

References: He et al., "Momentum Contrast for Unsupervised Visual Representation Learning", CVPR 2020
(algorithm 1: the key encoder is an EMA of the query encoder, ``m = 0.999``; keys of each batch are pushed
to a queue of ``K = 65536`` and the oldest dropped); Chen et al., "Improved Baselines with Momentum Contrastive
Learning" (MoCo v2, arXiv:2003.04297): a 2-layer MLP head (2048 hidden, 128 out) and ``T = 0.2``. Reference
code github.com/facebookresearch/moco (``moco/builder.py``).

Departures: the key encoder runs on the local batch without MoCo's shuffled BatchNorm (BatchNorm in the
projector is per process as in any DDP run; ``proj_norm: layer`` avoids the batch-statistics shortcut the
shuffle guards against). ``symmetric: true`` adds the swapped term (both views serve as query and key, as in
MoCo v3 and lightly's examples); the paper's loss is the one-sided one (default).

Multi-process: the keys of every process are gathered (without gradient) before they are pushed, so every
process holds the same queue; the InfoNCE of the local queries needs nothing else from the others.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from omnissl.interfaces import Encoder, Objective, ObjectiveOutput, Progress, Views
from omnissl.losses.moco import MoCoLoss
from omnissl.nn import EMATeacher, MLPHead, momentum_schedule
from omnissl.nn.queue import FeatureQueue
from omnissl.objectives._views import remember_student, two_views
from omnissl.specs import BuildContext, ComponentConfig


class MoCoConfig(ComponentConfig):
    """MoCo settings.

    Attributes:
        temperature: InfoNCE temperature ``T`` (0.2, MoCo v2; 0.07 in v1).
        queue_size: keys kept ``K`` (4096; paper 65536 on ImageNet: keep it well below the dataset size).
        momentum: key-encoder momentum ``m`` (0.999, paper), moved to ``momentum_final`` (0.999) along a cosine
            schedule (equal values: constant, as the paper).
        symmetric: also use the second view as query against the first's key (False, paper).
        hidden_dim (512; paper 2048), proj_dim (128), proj_layers (2), proj_norm (``batch`` | ``layer`` |
            ``none``; batch): the MLP head of MoCo v2.
    """

    temperature: float = Field(0.2, gt=0)
    queue_size: int = Field(4096, ge=1)
    momentum: float = Field(0.999, ge=0, le=1)
    momentum_final: float = Field(0.999, ge=0, le=1)
    symmetric: bool = False
    hidden_dim: int = Field(512, gt=0)
    proj_dim: int = Field(128, gt=0)
    proj_layers: int = Field(2, ge=1)
    proj_norm: str = Field("batch", pattern="^(batch|layer|none)$")


class MoCoObjective(Objective):
    """Query projector on the encoder, EMA key encoder + projector, a queue of normalised keys.

    ``loss`` defaults to :class:`omnissl.losses.moco.MoCoLoss`; MoCHi passes its own queue loss (same call,
    plus a ``generator``) and reuses everything else.
    """

    log_name, method = "moco", "MoCo"

    def __init__(self, encoder: Encoder, cfg: MoCoConfig, loss: nn.Module | None = None):
        super().__init__()
        self.cfg = cfg
        norm = None if cfg.proj_norm == "none" else cfg.proj_norm
        self.projector = MLPHead(encoder.output_dim, cfg.hidden_dim, cfg.proj_dim, num_layers=cfg.proj_layers, norm=norm)
        self.teacher_encoder = EMATeacher(encoder)
        self.teacher_projector = EMATeacher(self.projector)
        self.queue = FeatureQueue(cfg.queue_size, cfg.proj_dim, init="random")
        self.loss = loss if loss is not None else MoCoLoss(cfg.temperature)

    def keys(self, view) -> Tensor:
        """Normalised keys of ``view`` from the momentum encoder, ``(B, proj_dim)``, no gradient."""
        with torch.no_grad():
            return F.normalize(self.teacher_projector(self.teacher_encoder(view).pooled).float(), dim=1)

    def contrast(self, q: Tensor, k: Tensor, queue: Tensor) -> Tensor:
        """The loss of queries ``q`` against keys ``k`` and the queue (MoCHi overrides it to pass its draws)."""
        return self.loss(q, k, queue)

    def forward(self, encoder: Encoder, views: Views) -> ObjectiveOutput:
        first, second = two_views(views, self.method)
        remember_student(self, encoder)
        queue = self.queue.values()
        k_b = self.keys(second)
        loss = self.contrast(self.projector(encoder(first).pooled), k_b, queue)
        pushed = [k_b]
        if self.cfg.symmetric:
            k_a = self.keys(first)
            loss = 0.5 * (loss + self.contrast(self.projector(encoder(second).pooled), k_a, queue))
            pushed.append(k_a)
        self.queue.push(torch.cat(pushed))
        return ObjectiveOutput(loss=loss, logs={self.log_name: loss.detach()})

    def after_step(self, progress: Progress) -> None:
        student = self.__dict__.get("_student")
        if student is None:
            return
        m = momentum_schedule(self.cfg.momentum, self.cfg.momentum_final, progress.fraction, "cosine")
        self.teacher_encoder.update(student, m)
        self.teacher_projector.update(self.projector, m)

    @classmethod
    def build(cls, cfg: MoCoConfig, ctx: BuildContext) -> MoCoObjective:
        return cls(ctx.encoder, cfg)
