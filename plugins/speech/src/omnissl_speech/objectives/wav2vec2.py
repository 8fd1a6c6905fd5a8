"""wav2vec 2.0: identify the quantized latent of each masked frame among distractors (Baevski et al. 2020).

Reference: fairseq ``Wav2Vec2Model`` (``forward``, ``sample_negatives``, ``compute_preds``) and
``Wav2vecCriterion``: ``L = L_m + alpha * L_d + lambda * L_f``, each term a mean over masked frames:

- ``L_m``: the contrastive loss (cosine similarity, temperature 0.1, distractors drawn from the other
  masked frames of the same utterance, a distractor equal to the positive is ignored);
- ``L_d``: the diversity loss ``(G V - perplexity) / (G V)`` of the quantizer over the masked frames it
  quantized (fairseq quantizes ``unmasked_features[mask_indices]`` only), ``alpha = 0.1``;
- ``L_f``: the feature penalty, the mean squared output of the convolutional feature encoder
  (``features_pen``), ``lambda = 10`` (``loss_weights: [0.1, 10]`` in the base config).

What the quantizer reads, as fairseq: the feature encoder's output after its layer norm and *before* the
projection to the model width (``unmasked_features``), with dropout ``dropout_features`` (0.1); the
masked, projected features go to the context network. Gradients reaching the convolutions are scaled by
the encoder's ``feature_grad_mult`` (0.1). Pair with ``speech.span_masking`` views.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from omnissl.errors import ConfigError
from omnissl.interfaces import Objective, ObjectiveOutput, Progress, Views
from omnissl.specs import BuildContext, ComponentConfig
from omnissl_speech.quantizers import GumbelProductQuantizer


class Wav2Vec2ContrastiveConfig(ComponentConfig):
    """wav2vec 2.0 objective settings.

    Attributes:
        num_negatives: distractors ``K`` per masked frame (default 100).
        temperature: ``kappa`` of the cosine logits (default 0.1).
        diversity_weight: ``alpha`` (default 0.1).
        groups, entries, code_dim: product quantizer ``G``, ``V`` and width (defaults 2, 320, 128).
        final_dim: width both sides are projected to before the similarity (default 128).
        tau_start, tau_end, tau_decay: Gumbel temperature ``max(tau_start * tau_decay**step, tau_end)``
            (defaults 2.0, 0.5, 0.999995 per update as in the paper; use a faster decay for short runs).
        feature_penalty: ``lambda``, weight of the feature L2 penalty (default 10, fairseq's base config).
        dropout_features: dropout on the quantizer's input (default 0.1, fairseq's ``dropout_features``).
    """

    num_negatives: int = Field(100, ge=1)
    temperature: float = Field(0.1, gt=0)
    diversity_weight: float = Field(0.1, ge=0)
    groups: int = Field(2, ge=1)
    entries: int = Field(320, ge=2)
    code_dim: int = Field(128, gt=0)
    final_dim: int = Field(128, gt=0)
    tau_start: float = Field(2.0, gt=0)
    tau_end: float = Field(0.5, gt=0)
    tau_decay: float = Field(0.999995, gt=0, le=1)
    feature_penalty: float = Field(10.0, ge=0)
    dropout_features: float = Field(0.1, ge=0, lt=1)


def sample_distractors(mask: Tensor, num: int) -> Tensor:
    """For each frame, ``num`` other masked frames of the same utterance, uniformly with replacement.

    Returns ``(B, T, num)`` long positions; rows of unmasked frames are arbitrary (the loss ignores them);
    an utterance with a single masked frame gets the frame itself (then treated as no distractor).
    """
    B, T = mask.shape
    order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)  # masked positions first, in time order
    count = mask.sum(dim=1)  # (B,)
    rank = mask.long().cumsum(dim=1) - 1  # each masked frame's index among the masked frames
    draw = torch.floor(torch.rand(B, T, num, device=mask.device) * (count - 1).clamp_min(1)[:, None, None]).long()
    draw = draw + (draw >= rank[..., None]).long() * (count > 1)[:, None, None].long()
    draw = draw.clamp_max((count - 1).clamp_min(0)[:, None, None])
    return torch.gather(order, 1, draw.reshape(B, T * num)).reshape(B, T, num)


def masked_contrastive_loss(context: Tensor, targets: Tensor, mask: Tensor, num_negatives: int, temperature: float) -> tuple[Tensor, Tensor]:
    """wav2vec 2.0's ``L_m`` averaged over masked frames, and the accuracy of picking the positive.

    Shapes:
        ``context (B, T, D)`` (projected context outputs), ``targets (B, T, D)`` (projected quantized
        latents), ``mask (B, T)`` bool -> two scalars.
    """
    c = F.normalize(context.float(), dim=-1)
    q = F.normalize(targets.float(), dim=-1)
    sims = torch.einsum("bid,bjd->bij", c, q) / temperature  # every (frame, candidate) pair of an utterance
    negatives = sample_distractors(mask, num_negatives)  # (B, T, K)
    positive = torch.diagonal(sims, dim1=1, dim2=2)  # (B, T)
    negative = torch.gather(sims, 2, negatives)
    frames = torch.arange(mask.shape[1], device=mask.device)[None, :, None]
    negative = negative.masked_fill(negatives == frames, float("-inf"))  # fairseq's neg_is_pos
    logits = torch.cat([positive.unsqueeze(-1), negative], dim=-1)
    nll = -logits.log_softmax(dim=-1)[..., 0]
    weight = mask.float()
    loss = (nll * weight).sum() / weight.sum().clamp_min(1.0)
    correct = (logits.argmax(dim=-1) == 0).float()
    return loss, (correct * weight).sum() / weight.sum().clamp_min(1.0)


class Wav2Vec2Objective(Objective):
    """Mask encoder frames with a learned embedding, contrast context outputs with quantized latents.

    The quantizer reads the stem's unmasked features before the projection (``encoder.stem(batch)
    .unprojected``, fairseq's ``unmasked_features``) at the masked frames. Logs ``contrastive``,
    ``diversity``, ``feature_penalty``, ``perplexity`` (code usage), ``accuracy`` and ``tau``.
    """

    def __init__(self, dim: int, stem_dim: int, cfg: Wav2Vec2ContrastiveConfig):
        super().__init__()
        self.cfg = cfg
        self.mask_embedding = nn.Parameter(torch.empty(dim).uniform_())  # fairseq: uniform init
        self.quantizer = GumbelProductQuantizer(stem_dim, cfg.groups, cfg.entries, cfg.code_dim)
        self.project_q = nn.Linear(cfg.code_dim, cfg.final_dim)
        self.final_proj = nn.Linear(dim, cfg.final_dim)
        self.quantizer.anneal(0, cfg.tau_start, cfg.tau_end, cfg.tau_decay)

    def forward(self, encoder, views: Views) -> ObjectiveOutput:
        mask = views.info["mask"]
        stem = encoder.stem(views.inputs[0])
        if mask.shape != stem.padding_mask.shape:
            raise ValueError(f"span mask {tuple(mask.shape)} does not match the encoder's frames {tuple(stem.padding_mask.shape)}; build the views with the same encoder")
        out = encoder.contextualise(stem.z, stem.padding_mask, mask=mask, mask_embedding=self.mask_embedding)
        features = F.dropout(stem.unprojected, self.cfg.dropout_features, self.training)
        quantized = self.quantizer(features, mask)  # code usage over the masked frames, as fairseq
        loss_m, accuracy = masked_contrastive_loss(
            self.final_proj(out.tokens), self.project_q(quantized.vectors), mask, self.cfg.num_negatives, self.cfg.temperature
        )
        loss = loss_m + self.cfg.diversity_weight * quantized.diversity_loss + self.cfg.feature_penalty * stem.penalty
        return ObjectiveOutput(loss=loss, logs={
            "contrastive": loss_m.detach(), "diversity": quantized.diversity_loss.detach(), "feature_penalty": stem.penalty.detach(),
            "perplexity": quantized.perplexity, "accuracy": accuracy.detach(), "tau": self.quantizer.tau.clone(),
        })

    def after_step(self, progress: Progress) -> None:
        self.quantizer.anneal(progress.step, self.cfg.tau_start, self.cfg.tau_end, self.cfg.tau_decay)

    @classmethod
    def build(cls, cfg: Wav2Vec2ContrastiveConfig, ctx: BuildContext) -> Wav2Vec2Objective:
        stem_dim = getattr(ctx.encoder, "stem_dim", None)
        if stem_dim is None or not hasattr(ctx.encoder, "stem"):
            raise ConfigError(["objective: speech.wav2vec2 needs a speech encoder with a stem (speech.wav2vec2 or speech.frame_transformer)"])
        return cls(ctx.encoder.output_dim, stem_dim, cfg)
