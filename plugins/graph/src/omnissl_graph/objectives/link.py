"""Link reconstruction: predict the graph's edges from node embeddings (the structural pretext of ParetoGNN).

Reference: Ju et al., "Multi-task Self-supervised Graph Neural Networks Enable Stronger Task
Generalization" (ParetoGNN), ICLR 2023, which combines feature, contrastive and structural pretexts;
the structural task here is GAE-style link reconstruction (Kipf & Welling 2016): binary cross-entropy of
``sigmoid(<p(h_u), p(h_v)>)`` on observed edges against as many uniformly drawn node pairs. Self-loops
(which a source may carry, e.g. ``graph.tu`` with ``self_loops: true``) are not edges to predict: sampled
ones get weight 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from omnissl.interfaces import Encoder, Objective, ObjectiveOutput, Views
from omnissl.specs import BuildContext, ComponentConfig
from omnissl_graph.encoders import node_states


class LinkReconstructionConfig(ComponentConfig):
    """``max_edges`` positive edges sampled per step (4096) and the projection width ``proj_dim`` (128)."""

    max_edges: int = Field(4096, gt=0)
    proj_dim: int = Field(128, gt=0)


class LinkReconstructionObjective(Objective):
    """Encodes ``views.original`` (any view generator works) and scores edges vs random pairs."""

    def __init__(self, enc_dim: int, cfg: LinkReconstructionConfig):
        super().__init__()
        self.cfg = cfg
        self.projector = nn.Sequential(nn.Linear(enc_dim, cfg.proj_dim), nn.PReLU(), nn.Linear(cfg.proj_dim, cfg.proj_dim))

    def forward(self, encoder: Encoder, views: Views) -> ObjectiveOutput:
        graph = views.original
        z = self.projector(node_states(encoder(graph)))
        e, n = graph.edge_index.shape[1], z.shape[0]
        # edges and negatives come from the global RNG of the step (the view generator is not passed in)
        pos = graph.edge_index[:, torch.randint(e, (min(e, self.cfg.max_edges),), device=z.device)]
        neg = torch.randint(n, pos.shape, device=z.device)
        logits = torch.cat([(z[pos[0]] * z[pos[1]]).sum(-1), (z[neg[0]] * z[neg[1]]).sum(-1)])
        target = torch.cat([torch.ones(pos.shape[1], device=z.device), torch.zeros(neg.shape[1], device=z.device)])
        # weights instead of filtering: no data-dependent shape, so no host sync
        weight = torch.cat([(pos[0] != pos[1]).float(), torch.ones(neg.shape[1], device=z.device)])
        loss = (F.binary_cross_entropy_with_logits(logits.float(), target, reduction="none") * weight).sum() / weight.sum()
        return ObjectiveOutput(loss=loss, logs={"link_bce": loss.detach()})

    @classmethod
    def build(cls, cfg: LinkReconstructionConfig, ctx: BuildContext) -> LinkReconstructionObjective:
        enc = ctx.encoder
        return cls(enc.cfg.hidden_dim if hasattr(enc, "cfg") else enc.output_dim, cfg)
