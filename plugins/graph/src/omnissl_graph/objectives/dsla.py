"""D-SLA: discrepancy learning between a graph and its graded perturbations.

Reference: Kim et al., "Graph Self-supervised Learning with Accurate Discrepancy Learning", NeurIPS 2022,
eqs. (2)-(5). With ``h_0`` the pooled embedding of the original graph and ``h_k`` those of its ``K``
perturbations with edit distances ``e_k`` (from :class:`omnissl_graph.perturb.GradedPerturbation`):

- graph discrimination: a score head ``S`` must pick the original among ``{G_0, G_1..G_K}``:
  ``L_GD = -log e^{S(h_0)} / sum_k e^{S(h_k)}``;
- edit-distance learning: embedding distances must be proportional to the edit distances:
  ``L_edit = mean_{i,j} (d(h_0,h_i)/e_i - d(h_0,h_j)/e_j)^2``;
- margin: perturbations stay closer than other graphs of the batch:
  ``L_margin = mean_{i,n} max(0, margin + d(h_0,h_i) - d(h_0,h_n))``;
- ``L = L_GD + lambda_edit * L_edit + lambda_margin * L_margin``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from omnissl.interfaces import Encoder, Objective, ObjectiveOutput, Views
from omnissl.specs import BuildContext, ComponentConfig


class DSLAConfig(ComponentConfig):
    """``lambda_edit`` (1.0), ``lambda_margin`` (1.0), ``margin`` (1.0), score head ``hidden_dim`` (``None``: encoder width)."""

    lambda_edit: float = Field(1.0, ge=0)
    lambda_margin: float = Field(1.0, ge=0)
    margin: float = Field(1.0, ge=0)
    hidden_dim: int | None = Field(None, gt=0)


class DSLAObjective(Objective):
    """Needs ``graph.graded_perturbation`` views. Shapes: ``(K+1)`` views of ``G`` graphs -> ``(K+1, G, D)`` -> scalar."""

    def __init__(self, enc_dim: int, cfg: DSLAConfig):
        super().__init__()
        self.cfg = cfg
        hidden = cfg.hidden_dim or enc_dim
        self.score = nn.Sequential(nn.Linear(enc_dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, encoder: Encoder, views: Views) -> ObjectiveOutput:
        h = torch.stack([encoder(v).pooled.float() for v in views.inputs])  # (K+1, G, D)
        edits = views.info["edit_distance"].float()  # (K, G)
        scores = self.score(h).squeeze(-1)  # (K+1, G)
        target = torch.zeros(scores.shape[1], dtype=torch.long, device=scores.device)
        l_gd = F.cross_entropy(scores.T, target)
        d = (h[1:] - h[:1]).norm(dim=-1)  # (K, G)
        ratio = d / edits
        l_edit = (ratio[:, None, :] - ratio[None, :, :]).pow(2).mean()
        # other graphs of the batch as negatives: distance from each original to every other original
        d_neg = torch.cdist(h[0], h[0])  # (G, G)
        off = ~torch.eye(d_neg.shape[0], dtype=torch.bool, device=d_neg.device)
        hinge = F.relu(self.cfg.margin + d[:, :, None] - d_neg[None, :, :])  # (K, G, G)
        l_margin = (hinge * off).sum() / (off.sum() * d.shape[0]).clamp(min=1)
        loss = l_gd + self.cfg.lambda_edit * l_edit + self.cfg.lambda_margin * l_margin
        return ObjectiveOutput(loss=loss, logs={"discrimination": l_gd.detach(), "edit": l_edit.detach(), "margin": l_margin.detach()})

    @classmethod
    def build(cls, cfg: DSLAConfig, ctx: BuildContext) -> DSLAObjective:
        return cls(ctx.encoder.output_dim, cfg)
