"""GraphMAE: masked node-feature reconstruction with re-masking and the scaled cosine error.

Reference: Hou et al., "GraphMAE: Self-Supervised Masked Graph Autoencoders", KDD 2022; official code
github.com/THUDM/GraphMAE ``graphmae/models/edcoder.py`` (``PreModel.mask_attr_prediction``). Per step:

1. the view generator (:class:`omnissl_graph.masking.AttributeMasking`) masks nodes; here the token nodes
   receive the learned [MASK] token ``enc_mask_token`` (initialised to zeros, as the official code);
2. the encoder encodes the masked graph;
3. ``encoder_to_decoder`` (a bias-free linear map) is applied and the rows of masked nodes are set to 0
   ("re-mask", skipped for an MLP/linear decoder as in the official code);
4. a one-layer decoder (GAT with ``decoder_heads`` heads, or GIN/GCN/linear) reconstructs the features
   (the GAT decoder is evaluated for the masked rows only, exactly; see :mod:`omnissl_graph.decoders`);
5. the scaled cosine error (the core's :class:`omnissl.losses.reconstruction.ScaledCosineError`) on the
   masked nodes only.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn
from torch_geometric.nn import GCNConv, GINConv

from omnissl.interfaces import Encoder, Objective, ObjectiveOutput, Views
from omnissl.losses.reconstruction import ScaledCosineError
from omnissl.specs import BuildContext, ComponentConfig
from omnissl_graph.decoders import GATDecoder
from omnissl_graph.encoders import gin_mlp, in_dim_from, node_states, with_x


class GraphMAEConfig(ComponentConfig):
    """GraphMAE head settings; defaults are the official Cora ones.

    Attributes:
        gamma: SCE exponent ``alpha_l`` (3, Cora; MUTAG 2, PROTEINS 1).
        decoder: ``gat`` (default), ``gin``, ``gcn`` or ``linear``.
        decoder_heads: heads of the GAT decoder (1, GraphMAE ``num_out_heads``).
        feat_drop: dropout on the decoder input (0.2, the run's ``in_drop``).
        attn_drop: attention dropout of the GAT decoder (0.1).
        decoder_norm: norm inside a GIN decoder's MLP (``none``; graph-level configs use ``batchnorm``).
        in_dim: reconstructed feature width; ``None`` (default) reads it from the data source.
        concat_layers: decode from every encoder layer concatenated (GraphMAE ``concat_hidden``, False).
    """

    gamma: float = Field(3.0, ge=1)
    decoder: Literal["gat", "gin", "gcn", "linear"] = "gat"
    decoder_heads: int = Field(1, ge=1)
    feat_drop: float = Field(0.2, ge=0, lt=1)
    attn_drop: float = Field(0.1, ge=0, lt=1)
    decoder_norm: Literal["none", "batchnorm", "layernorm"] = "none"
    in_dim: int | None = Field(None, gt=0)
    concat_layers: bool = False


class GraphMAEObjective(Objective):
    """Masked feature reconstruction; needs the ``graph.attribute_masking`` view generator.

    Shapes:
        ``views.original.x``: ``(N, F)``; encoder node states ``(N, D)``; reconstruction ``(N, F)``; the
        loss reads the ``M`` masked rows.
    Multi-process: the loss is a mean over local masked nodes; DDP averages gradients across processes.
    """

    def __init__(self, in_dim: int, enc_dim: int, enc_layers: int, cfg: GraphMAEConfig):
        super().__init__()
        self.cfg = cfg
        self.enc_mask_token = nn.Parameter(torch.zeros(1, in_dim))
        rep_dim = enc_dim * (enc_layers if cfg.concat_layers else 1)
        self.encoder_to_decoder = nn.Linear(rep_dim, enc_dim, bias=False)
        if cfg.decoder == "gat":
            if in_dim % cfg.decoder_heads:
                raise ValueError(f"objective.decoder_heads={cfg.decoder_heads} must divide the feature width {in_dim}")
            self.decoder = GATDecoder(enc_dim, in_dim // cfg.decoder_heads, cfg.decoder_heads, cfg.attn_drop)
        elif cfg.decoder == "gin":
            self.decoder = GINConv(gin_mlp(enc_dim, enc_dim, in_dim, cfg.decoder_norm, "prelu"))
        elif cfg.decoder == "gcn":
            self.decoder = GCNConv(enc_dim, in_dim)
        else:
            self.decoder = nn.Linear(enc_dim, in_dim)
        self.sce = ScaledCosineError(cfg.gamma)

    def forward(self, encoder: Encoder, views: Views) -> ObjectiveOutput:
        view, original = views.inputs[0], views.original
        mask_nodes, token_nodes = views.info["mask_nodes"], views.info["token_nodes"]
        is_token = torch.zeros(view.x.shape[0], 1, device=view.x.device, dtype=view.x.dtype).index_fill_(0, token_nodes, 1.0)
        masked = with_x(view, view.x + is_token * self.enc_mask_token)
        rep = self.encoder_to_decoder(node_states(encoder(masked), self.cfg.concat_layers))
        if self.cfg.decoder != "linear":
            is_masked = torch.ones(rep.shape[0], 1, device=rep.device, dtype=rep.dtype).index_fill_(0, mask_nodes, 0.0)
            rep = rep * is_masked  # re-mask: the decoder must rebuild masked nodes from their neighbours
        rep = F.dropout(rep, p=self.cfg.feat_drop, training=self.training)
        if self.cfg.decoder == "gat":  # computes the masked rows only (see omnissl_graph.decoders)
            recon = self.decoder(rep, masked.edge_index, rows=mask_nodes)
        else:
            recon = (self.decoder(rep) if self.cfg.decoder == "linear" else self.decoder(rep, masked.edge_index))[mask_nodes]
        loss = self.sce(recon, original.x[mask_nodes].float())
        return ObjectiveOutput(loss=loss, logs={"sce": loss.detach()})

    @classmethod
    def build(cls, cfg: GraphMAEConfig, ctx: BuildContext) -> GraphMAEObjective:
        enc = ctx.encoder
        enc_dim = enc.cfg.hidden_dim if hasattr(enc, "cfg") else enc.output_dim
        layers = enc.cfg.num_layers if hasattr(enc, "cfg") else 1
        return cls(in_dim_from(ctx, cfg.in_dim, "objective"), enc_dim, layers, cfg)
