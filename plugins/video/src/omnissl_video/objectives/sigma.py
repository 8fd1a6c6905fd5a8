"""SIGMA: Sinkhorn-guided masked video modelling.

Reference: Salehi et al., "SIGMA: Sinkhorn-Guided Masked Video Modeling", ECCV 2024; official code
github.com/QUVA-Lab/SIGMA ``modeling_pretrain.py`` (``PretrainVisionTransformer.forward``,
``extract_assignments``) and ``engine_for_pretraining.py`` (the ``SWAV`` loss). VideoMAE's encoder and
decoder are kept; the decoder now predicts *deep features* of the masked tubes instead of their pixels,
and the target features come from a projection network trained jointly. Plain L2 between two jointly
trained networks collapses, so both sides are assigned to ``K`` learnable prototypes with Sinkhorn-Knopp
(balanced clusters over the batch's tubes) and each side predicts the other's assignment:

- ``target = "mlp"`` (the official ``--target_type mlp``): the projection network is the official MLP
  ``in -> 1024 -> 1024 -> 512 -> feature_dim`` (GELU) over the per-tube normalised pixels of the masked
  tubes (the same target VideoMAE regresses);
- ``target = "ema"``: the official best variant projects frozen DINO features (``--target_type dino_v1``,
  head ``Identity``); no pretrained weights can be downloaded here, so this option uses the features of
  an EMA teacher of the video encoder itself (the core's :class:`omnissl.nn.EMATeacher`) on the full
  clip, normalised per tube like the official DINO targets, followed by the same MLP projection. This
  is a departure from the paper, named as such in ``docs/domains/video.md``.

Loss (official constants): prototypes are L2-normalised before every step; ``scores = normalize(z) @ C^T``;
``q = sinkhorn(scores)`` with ``epsilon = 0.05`` and 10 iterations (the core's
:func:`omnissl.losses.sinkhorn_knopp`, SwAV's equipartition over the global batch of tubes); the symmetric
prediction loss is ``CE(s_proj / 0.1, argmax q_dec) + CE(s_dec / 0.1, argmax q_proj)`` where the decoder's
scores use detached prototypes (``extract_assignments(x, detach=True)``), so the prototypes learn from the
projection side only.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from omnissl.interfaces import Encoder, Objective, ObjectiveOutput, Progress, Views
from omnissl.losses import sinkhorn_knopp
from omnissl.nn import EMATeacher, gather_tokens, momentum_schedule
from omnissl.specs import BuildContext, ComponentConfig
from omnissl_video.objectives.decoder import normalized_patch_targets
from omnissl_video.objectives.videomae import decoder_for


class SIGMAConfig(ComponentConfig):
    """SIGMA settings (official defaults unless said).

    Attributes:
        target: ``"mlp"`` (projection of normalised pixels, default) or ``"ema"`` (projection of EMA
            teacher features, the stand-in for frozen DINO; see the module docstring).
        feature_dim: width of the predicted features and prototypes (default 256, ``decoder_num_classes``).
        projector_dims: hidden widths of the projection MLP (default ``[1024, 1024, 512]``).
        num_prototypes: ``K`` (default 3000). temperature: scores are divided by it (default 0.1).
        sinkhorn_epsilon: (default 0.05). sinkhorn_iterations: (default 10).
        decoder_dim, decoder_depth, decoder_heads: as ``video.videomae`` (defaults ``None``, 4, ``None``).
        momentum, final_momentum: EMA teacher momentum schedule for ``target="ema"`` (0.996 -> 1.0, cosine).
    """

    target: Literal["mlp", "ema"] = "mlp"
    feature_dim: int = Field(256, gt=0)
    projector_dims: list[int] = Field(default_factory=lambda: [1024, 1024, 512])
    num_prototypes: int = Field(3000, ge=2)
    temperature: float = Field(0.1, gt=0)
    sinkhorn_epsilon: float = Field(0.05, gt=0)
    sinkhorn_iterations: int = Field(10, ge=1)
    decoder_dim: int | None = Field(None, gt=0)
    decoder_depth: int = Field(4, ge=0)
    decoder_heads: int | None = Field(None, gt=0)
    momentum: float = Field(0.996, ge=0, le=1)
    final_momentum: float = Field(1.0, ge=0, le=1)


def projection_mlp(in_dim: int, hidden: list[int], out_dim: int) -> nn.Sequential:
    """SIGMA's ``init_proj_mlp``: Linear-GELU blocks through ``hidden``, then a linear map to ``out_dim``."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.GELU()]
        in_dim = width
    return nn.Sequential(*layers, nn.Linear(in_dim, out_dim))


def swapped_assignment_loss(scores_a: Tensor, scores_b: Tensor, temperature: float, epsilon: float, iterations: int) -> tuple[Tensor, Tensor, Tensor]:
    """SIGMA's symmetric loss: each side's scores predict the other side's hard Sinkhorn assignment.

    Shapes:
        ``scores_a``, ``scores_b``: ``(R, K)`` cosine scores of ``R`` tubes against ``K`` prototypes.
    Returns:
        the loss and the two code matrices ``(R, K)`` (rows sum to 1; columns near ``R / K``).
    """
    with torch.no_grad():
        q_a = sinkhorn_knopp(scores_a.detach(), epsilon, iterations)
        q_b = sinkhorn_knopp(scores_b.detach(), epsilon, iterations)
    loss = F.cross_entropy(scores_a.float() / temperature, q_b.argmax(dim=1)) + F.cross_entropy(scores_b.float() / temperature, q_a.argmax(dim=1))
    return loss, q_a, q_b


class SIGMAObjective(Objective):
    """Sinkhorn-guided feature prediction; needs ``video.vit`` and ``video.tube_masking``.

    Shapes:
        decoder predictions and projected targets ``(B, M, feature_dim)``; scores ``(B*M, K)``.
    Multi-process: Sinkhorn normalises over the global batch of tubes (the core's ``sinkhorn_knopp``
    all-reduces its sums); the cross-entropy is a local mean and DDP averages gradients.
    """

    def __init__(self, encoder: Encoder, cfg: SIGMAConfig):
        super().__init__()
        self.cfg = cfg
        self.tubelet, self.patch = encoder.tubelet_size, encoder.patch_size
        self.decoder = decoder_for(encoder, cfg.feature_dim, cfg.decoder_dim, cfg.decoder_depth, cfg.decoder_heads)
        in_dim = encoder.patch_dim if cfg.target == "mlp" else encoder.output_dim
        self.projector = projection_mlp(in_dim, cfg.projector_dims, cfg.feature_dim)
        self.prototypes = nn.Parameter(F.normalize(torch.randn(cfg.num_prototypes, cfg.feature_dim), dim=1))
        self.teacher = EMATeacher(encoder) if cfg.target == "ema" else None

    @classmethod
    def build(cls, cfg: SIGMAConfig, ctx: BuildContext) -> SIGMAObjective:
        return cls(ctx.encoder, cfg)

    def targets(self, clips: Tensor, masked: Tensor) -> Tensor:
        """The projection network's input for every masked tube: ``(B, M, patch_dim or D)``."""
        if self.teacher is None:
            return gather_tokens(normalized_patch_targets(clips, self.tubelet, self.patch), masked)
        with torch.no_grad():
            features = self.teacher(clips).tokens.float()
            # per-tube standardisation over channels, as the official code normalises DINO features
            features = (features - features.mean(dim=-1, keepdim=True)) / (features.var(dim=-1, unbiased=True, keepdim=True).sqrt() + 1e-6)
        return gather_tokens(features, masked)

    def forward(self, encoder: Encoder, views: Views) -> ObjectiveOutput:
        clips = views.inputs[0]
        keep, masked = views.info["keep"], views.info["masked"]
        object.__setattr__(self, "_student", encoder)  # for after_step, without registering it as a submodule
        prediction = self.decoder(encoder(clips, keep=keep).tokens, keep, masked)  # (B, M, F)
        projected = self.projector(self.targets(clips, masked))  # (B, M, F)
        prototypes = self.prototypes
        scores_proj = F.normalize(projected.flatten(0, 1).float(), dim=1) @ prototypes.T.float()
        scores_pred = F.normalize(prediction.flatten(0, 1).float(), dim=1) @ prototypes.detach().T.float()
        loss, q_proj, q_pred = swapped_assignment_loss(scores_proj, scores_pred, self.cfg.temperature, self.cfg.sinkhorn_epsilon, self.cfg.sinkhorn_iterations)
        with torch.no_grad():
            agree = (q_proj.argmax(dim=1) == q_pred.argmax(dim=1)).float().mean()
            used = (torch.zeros(self.cfg.num_prototypes, device=q_proj.device).index_fill_(0, q_proj.argmax(dim=1), 1.0)).sum()
        return ObjectiveOutput(loss=loss, logs={"assignment_agreement": agree, "prototypes_used": used})

    @torch.no_grad()
    def after_step(self, progress: Progress) -> None:
        # the official code re-normalises the prototypes at the start of every forward; after each
        # optimizer step is the same point in the computation and keeps the forward free of in-place writes
        self.prototypes.copy_(F.normalize(self.prototypes, dim=1))
        student = self.__dict__.get("_student")
        if self.teacher is not None and student is not None:
            self.teacher.update(student, momentum_schedule(self.cfg.momentum, self.cfg.final_momentum, progress.fraction))
