"""Deep Graph Infomax: node-summary mutual information against feature-shuffled negatives (ParetoGNN's ``p_ming``).

Reference: Veličković et al., "Deep Graph Infomax", ICLR 2019, eqs. (1)-(3); as used by ParetoGNN (Ju et al.,
ICLR 2023) in github.com/jumxglhf/ParetoGNN ``src/model.py`` (``p_ming``, ``Discriminator``): with ``H`` the
node states of the graph and ``H~`` those of the graph with its feature rows shuffled,
``s = sigmoid(mean_i H_i)``, ``D(h, s) = h^T W s`` and
``L = BCE(sigmoid(D(H_i, s)), 1) + BCE(sigmoid(D(H~_i, s)), 0)`` averaged over nodes. ``W`` is initialised
uniform in ``±1/sqrt(D)`` as the official ``Discriminator``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from omnissl.interfaces import Encoder, Objective, ObjectiveOutput, Views
from omnissl.specs import BuildContext, ComponentConfig
from omnissl_graph.encoders import node_states, with_x


class DGIConfig(ComponentConfig):
    """No parameters: the discriminator is bilinear in the encoder's node width."""


class DGIObjective(Objective):
    """Encodes ``views.original`` and its row-shuffled copy; shapes ``(N, D)`` each -> scalar.

    The shuffle uses the step's global RNG (the view generator is not passed to objectives), as
    :class:`omnissl_graph.objectives.link.LinkReconstructionObjective` does. With a ``Batch`` of graphs or a
    sampled subgraph the summary is the mean over all its nodes, as the official code's batched graph.
    """

    def __init__(self, enc_dim: int, cfg: DGIConfig):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(enc_dim, enc_dim).uniform_(-1 / math.sqrt(enc_dim), 1 / math.sqrt(enc_dim)))

    def forward(self, encoder: Encoder, views: Views) -> ObjectiveOutput:
        graph = views.original
        perm = torch.randperm(graph.x.shape[0], device=graph.x.device)
        positive = node_states(encoder(graph)).float()
        negative = node_states(encoder(with_x(graph, graph.x[perm]))).float()
        summary = torch.sigmoid(positive.mean(0))
        ws = self.weight @ summary
        logits = torch.cat([positive @ ws, negative @ ws])
        target = torch.cat([torch.ones(positive.shape[0], device=logits.device), torch.zeros(negative.shape[0], device=logits.device)])
        # the official sum of two BCE means equals twice the BCE over both halves (they have the same size)
        loss = 2 * F.binary_cross_entropy_with_logits(logits, target)
        return ObjectiveOutput(loss=loss, logs={"dgi_bce": loss.detach()})

    @classmethod
    def build(cls, cfg: DGIConfig, ctx: BuildContext) -> DGIObjective:
        enc = ctx.encoder
        return cls(enc.cfg.hidden_dim if hasattr(enc, "cfg") else enc.output_dim, cfg)
