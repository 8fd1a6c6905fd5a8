"""w2v-BERT: a contrastive module and a masked-language-model module trained end to end (Chung et al. 2021).

The first ``contrastive_layers`` blocks of the context network are the contrastive module: at masked
frames they solve wav2vec 2.0's task against the quantized unmasked local features (``L_w + 0.1 L_d``).
The remaining blocks are the MLM module: at masked frames they predict the quantizer's code ids with a
cross-entropy (``L_m``). The objective is ``L = L_w + 0.1 L_d + L_m`` (paper section 3.4, beta = 1).
Pair with ``speech.span_masking`` views.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from pydantic import Field
from torch import nn

from omnissl.interfaces import Objective, ObjectiveOutput, Progress, Views
from omnissl.specs import BuildContext, ComponentConfig
from omnissl_speech.objectives.wav2vec2 import masked_contrastive_loss
from omnissl_speech.quantizers import GumbelProductQuantizer


class W2VBERTConfig(ComponentConfig):
    """w2v-BERT settings.

    Attributes:
        contrastive_layers: blocks in the contrastive module; the rest are the MLM module (default 1;
            the paper uses 12 of 24 conformer blocks).
        mlm_weight: ``beta`` on the MLM loss (default 1.0).
        num_negatives, temperature, diversity_weight: the contrastive task (defaults 100, 0.1, 0.1).
        groups, entries, code_dim: quantizer (defaults 1, 320, 128; the paper uses one codebook of 1024).
        final_dim: contrastive projection width (default 128).
        tau_start, tau_end, tau_decay: Gumbel temperature schedule (as ``speech.wav2vec2``).
    """

    contrastive_layers: int = Field(1, ge=1)
    mlm_weight: float = Field(1.0, ge=0)
    num_negatives: int = Field(100, ge=1)
    temperature: float = Field(0.1, gt=0)
    diversity_weight: float = Field(0.1, ge=0)
    groups: int = Field(1, ge=1)
    entries: int = Field(320, ge=2)
    code_dim: int = Field(128, gt=0)
    final_dim: int = Field(128, gt=0)
    tau_start: float = Field(2.0, gt=0)
    tau_end: float = Field(0.5, gt=0)
    tau_decay: float = Field(0.999995, gt=0, le=1)


class W2VBERTObjective(Objective):
    """Contrastive loss on block ``contrastive_layers``'s output, MLM on the final output; one backward.

    Logs ``contrastive``, ``diversity``, ``mlm``, ``mlm_accuracy``, ``perplexity``.
    """

    def __init__(self, dim: int, depth: int, cfg: W2VBERTConfig):
        super().__init__()
        if cfg.contrastive_layers >= depth:
            raise ValueError(f"objective.contrastive_layers={cfg.contrastive_layers} must be below the encoder depth {depth} to leave an MLM module")
        self.cfg = cfg
        self.mask_embedding = nn.Parameter(torch.empty(dim).uniform_())
        self.quantizer = GumbelProductQuantizer(dim, cfg.groups, cfg.entries, cfg.code_dim)
        self.quantizer.anneal(0, cfg.tau_start, cfg.tau_end, cfg.tau_decay)
        self.project_q = nn.Linear(cfg.code_dim, cfg.final_dim)
        self.final_proj = nn.Linear(dim, cfg.final_dim)
        self.mlm_head = nn.Linear(dim, cfg.groups * cfg.entries)

    def forward(self, encoder, views: Views) -> ObjectiveOutput:
        batch, mask = views.inputs[0], views.info["mask"]
        z, padding = encoder.local_features(batch)
        out = encoder.contextualise(z, padding, mask=mask, mask_embedding=self.mask_embedding)
        quantized = self.quantizer(z, ~padding)
        contrastive_out = out.layers[self.cfg.contrastive_layers - 1]
        loss_w, accuracy = masked_contrastive_loss(
            self.final_proj(contrastive_out), self.project_q(quantized.vectors), mask, self.cfg.num_negatives, self.cfg.temperature
        )
        logits = rearrange(self.mlm_head(out.tokens).float(), "b t (g v) -> b v t g", g=self.cfg.groups)
        targets = quantized.codes.detach()  # (B, T, G): the ids the quantizer assigns to the unmasked frames
        nll = F.cross_entropy(logits, targets, reduction="none").mean(dim=-1)
        weight = mask.float()
        loss_m = (nll * weight).sum() / weight.sum().clamp_min(1.0)
        mlm_acc = ((logits.argmax(1) == targets).float().mean(-1) * weight).sum() / weight.sum().clamp_min(1.0)
        loss = loss_w + self.cfg.diversity_weight * quantized.diversity_loss + self.cfg.mlm_weight * loss_m
        return ObjectiveOutput(loss=loss, logs={
            "contrastive": loss_w.detach(), "diversity": quantized.diversity_loss.detach(), "mlm": loss_m.detach(),
            "contrastive_accuracy": accuracy.detach(), "mlm_accuracy": mlm_acc.detach(), "perplexity": quantized.perplexity,
        })

    def after_step(self, progress: Progress) -> None:
        self.quantizer.anneal(progress.step, self.cfg.tau_start, self.cfg.tau_end, self.cfg.tau_decay)

    @classmethod
    def build(cls, cfg: W2VBERTConfig, ctx: BuildContext) -> W2VBERTObjective:
        return cls(ctx.encoder.output_dim, len(ctx.encoder.trunk.blocks), cfg)
