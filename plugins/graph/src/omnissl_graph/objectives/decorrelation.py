"""Feature decorrelation between two views, CCA-SSG style (ParetoGNN's ``p_decor``).

References: Zhang et al., "From Canonical Correlation Analysis to Self-supervised Graph Neural Networks"
(CCA-SSG), NeurIPS 2021, eq. (6); ParetoGNN (Ju et al., ICLR 2023) github.com/jumxglhf/ParetoGNN
``src/model.py`` ``p_decor``, which this follows exactly: node states ``H1, H2 (N, D)`` of two views are
standardised per dimension (``Z = (H - mean) / std``), and

``L = ||(Z1 - Z2) / N||_F + lambda (||I - Z1^T Z1 / N||_F + ||I - Z2^T Z2 / N||_F)``

(ParetoGNN takes the Frobenius norms themselves; CCA-SSG squares them and scales ``Z`` by ``1/sqrt(N)``).
``lambd`` defaults to ParetoGNN's ``decor_lamb`` 1e-3.
"""

from __future__ import annotations

import torch
from pydantic import Field

from omnissl.interfaces import Encoder, Objective, ObjectiveOutput, Views
from omnissl.specs import BuildContext, ComponentConfig
from omnissl_graph.encoders import node_states


class DecorrelationConfig(ComponentConfig):
    """``lambd`` (1e-3): weight of the decorrelation terms against the invariance term."""

    lambd: float = Field(1e-3, ge=0)


def decorrelation_loss(h1: torch.Tensor, h2: torch.Tensor, lambd: float) -> torch.Tensor:
    """ParetoGNN's ``p_decor`` on ``(N, D)`` node states of two views (module docstring)."""
    n = h1.shape[0]
    z1 = (h1 - h1.mean(0)) / h1.std(0)
    z2 = (h2 - h2.mean(0)) / h2.std(0)
    eye = torch.eye(z1.shape[1], device=z1.device)
    invariance = torch.linalg.matrix_norm((z1 - z2) / n)
    return invariance + lambd * (torch.linalg.matrix_norm(eye - z1.T @ z1 / n) + torch.linalg.matrix_norm(eye - z2.T @ z2 / n))


class DecorrelationObjective(Objective):
    """Reads the view pair in ``info["contrastive_views"]`` (``graph.multi_pretext_views``) or ``inputs``."""

    def __init__(self, cfg: DecorrelationConfig):
        super().__init__()
        self.cfg = cfg

    def forward(self, encoder: Encoder, views: Views) -> ObjectiveOutput:
        pair = views.info.get("contrastive_views", views.inputs)
        if len(pair) != 2:
            raise ValueError(f"graph.decorrelation needs two views (graph.grace_views or graph.multi_pretext_views), got {len(pair)}")
        h1, h2 = (node_states(encoder(v)).float() for v in pair)
        loss = decorrelation_loss(h1, h2, self.cfg.lambd)
        return ObjectiveOutput(loss=loss, logs={"decorrelation": loss.detach()})

    @classmethod
    def build(cls, cfg: DecorrelationConfig, ctx: BuildContext) -> DecorrelationObjective:
        return cls(cfg)
