"""SwAV objective: projector, prototypes, swapped prediction of Sinkhorn codes, multi-crop, queue, frozen start.

Reference: Caron et al., "Unsupervised Learning of Visual Features by Contrasting Cluster Assignments", NeurIPS
2020; reference code github.com/facebookresearch/swav (``main_swav.py``). As the paper trains it:

- multi-crop (section 3.2): any number of views; the first ``num_large_crops`` are the large (high-resolution)
  crops and the only ones whose codes are computed (``crops_for_assign``); every crop predicts the codes of
  every large crop but its own. Views may differ in size (each is encoded separately). Modalities without a
  natural crop (speech segments, table rows) simply give two views.
- the queue (section 4.3, "small batches"): per large crop, a first-in first-out queue of the normalised
  embeddings of earlier batches (3840 for batch 256 on ImageNet); their scores against the current prototypes
  join the Sinkhorn normalisation, and their codes are dropped. ``queue_size`` counts rows over all processes
  (the reference's ``queue_length``, split across GPUs there). Every process holds the same gathered queue
  (so DDP's buffer broadcast cannot change it) and feeds a disjoint ``rank::world`` slice to Sinkhorn, whose
  row sums are reduced over processes: the codes are those of one process with the global batch and the whole
  queue, as the reference's per-GPU queues give. Pushing starts at ``queue_start_step`` (the paper starts at
  epoch 15) and the queue is used once it is full.
- frozen prototypes (``freeze_prototypes_niters``, 313 iterations in the paper): during the first
  ``freeze_prototypes_steps`` steps the prototypes get no gradient (their scores use a detached weight, so the
  optimizer sees ``grad = None``, as the reference's ``p.grad = None``).
- prototypes re-normalised after every step (the reference does it at the start of each iteration).

Defaults: temperature 0.1, epsilon 0.05, 3 Sinkhorn iterations; the paper uses 3000 prototypes for ImageNet,
scale ``num_prototypes`` with the data. Sinkhorn takes the direct (fast) path for these cosine scores.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from omnissl import distributed
from omnissl.interfaces import Encoder, Objective, ObjectiveOutput, Progress, Views
from omnissl.losses.swav import Prototypes, SwAVLoss
from omnissl.nn import MLPHead
from omnissl.nn.queue import FeatureQueue
from omnissl.specs import BuildContext, ComponentConfig


class SwAVConfig(ComponentConfig):
    """SwAV settings.

    Attributes:
        num_prototypes (64; paper 3000), temperature (0.1), epsilon (0.05), sinkhorn_iterations (3).
        hidden_dim (512; paper 2048), proj_dim (128): the projection head.
        num_large_crops: the first views that are large crops and give codes (2, paper ``crops_for_assign``).
        queue_size: embeddings kept per large crop, over all processes (0: no queue; paper 3840 at batch 256).
        queue_start_step: step from which embeddings are pushed (0; paper: epoch 15).
        freeze_prototypes_steps: first steps without prototype updates (0; paper 313 iterations, about one
            ImageNet epoch at batch 4096: set it to about one epoch of your data).
    """

    num_prototypes: int = Field(64, ge=2)
    temperature: float = Field(0.1, gt=0)
    epsilon: float = Field(0.05, gt=0)
    sinkhorn_iterations: int = Field(3, ge=1)
    hidden_dim: int = Field(512, gt=0)
    proj_dim: int = Field(128, gt=0)
    num_large_crops: int = Field(2, ge=1)
    queue_size: int = Field(0, ge=0)
    queue_start_step: int = Field(0, ge=0)
    freeze_prototypes_steps: int = Field(0, ge=0)


class SwAVObjective(Objective):
    """Scores of every crop to the prototypes; each large crop's codes predicted from every other crop.

    Logs ``swav`` and ``queue_used`` (1 when the queue joined the Sinkhorn codes this step).
    """

    def __init__(self, encoder_dim: int, cfg: SwAVConfig):
        super().__init__()
        self.cfg = cfg
        self.projector = MLPHead(encoder_dim, cfg.hidden_dim, cfg.proj_dim, num_layers=2)
        self.prototypes = Prototypes(cfg.proj_dim, cfg.num_prototypes)
        self.loss = SwAVLoss(cfg.temperature, cfg.epsilon, cfg.sinkhorn_iterations)
        self.queues = nn.ModuleList(
            FeatureQueue(cfg.queue_size, cfg.proj_dim, init="empty") for _ in range(cfg.num_large_crops if cfg.queue_size else 0)
        )
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self._step = 0

    def scores(self, z: Tensor) -> Tensor:
        """Cosine scores of embeddings ``(B, D)`` to the prototypes; no prototype gradient while frozen."""
        if self._step < self.cfg.freeze_prototypes_steps:
            with torch.autocast(device_type=z.device.type, enabled=False):
                return F.normalize(z.float(), dim=1) @ self.prototypes.weight.detach().float().T
        return self.prototypes(z)

    def forward(self, encoder: Encoder, views: Views) -> ObjectiveOutput:
        if len(views.inputs) < 2:
            raise ValueError(
                f"SwAV needs at least two views (large crops first), the view generator gave {len(views.inputs)}; "
                "use a view generator with num_views: 2 or more"
            )
        large = min(self.cfg.num_large_crops, len(views.inputs))
        embeddings = [F.normalize(self.projector(encoder(v).pooled).float(), dim=1) for v in views.inputs]
        scores = [self.scores(z) for z in embeddings]
        queue_scores = None
        if self.queues and self.queues[0].full:
            weight = self.prototypes.weight.detach().float()
            rank, world = distributed.rank(), distributed.world_size()
            queue_scores = [q.values()[rank::world] @ weight.T for q in self.queues[:large]]
        loss = self.loss.multi_crop(scores[:large], scores[large:], queue_scores)
        if self.queues and self._step >= self.cfg.queue_start_step:
            for queue, z in zip(self.queues, embeddings[:large]):
                queue.push(z.detach())
        used = loss.detach().new_full((), float(queue_scores is not None))  # a fill, not a host-to-device copy
        return ObjectiveOutput(loss=loss, logs={"swav": loss.detach(), "queue_used": used})

    def after_step(self, progress: Progress) -> None:
        self._step = progress.step
        self.step.fill_(progress.step)
        self.prototypes.normalise_()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._step = int(self.step)  # at load time, not in the training step

    @classmethod
    def build(cls, cfg: SwAVConfig, ctx: BuildContext) -> SwAVObjective:
        return cls(ctx.encoder.output_dim, cfg)
