"""Graph node-token encoder: a GNN stem, a projection to the trunk's width, then a transformer over each graph's nodes.

The graph's door into a cross-domain run: the transformer may be a shared trunk (``trunk: "@shared.<name>"``),
so graphs train the same blocks as tables, speech, video and volumes. Each graph's nodes are its tokens
(``torch_geometric.utils.to_dense_batch`` pads a batch of graphs to ``(G, N_max, D)`` with a padding mask);
the GCN stem (PyG ``GCNConv``) carries the structure into the tokens, so the trunk needs no positional
encoding (nodes have no order; attention over them stays permutation-equivariant). The design is the
"message passing then global attention" of GraphTrans (Wu et al., NeurIPS 2021), with the attention in the
trunk.

``keep`` ``(G, K)`` indexes nodes in that padded layout. Kept-out nodes have their input features replaced
by a learned [MASK] vector *before* message passing (GraphMAE's masking, Hou et al. 2022), so neither they nor
their neighbours carry the hidden features into the visible tokens; the trunk then encodes only the kept
nodes.

Shapes:
    a PyG ``Data`` (one graph, node-level) or ``Batch`` -> ``Encoded``: ``tokens`` ``(G, N_max or K, D)``,
    ``padding_mask`` ``(G, N_max or K)``; ``pooled`` per node ``(N, D)`` for one graph (per seed node for a
    neighbour-sampled subgraph), per graph ``(G, D)`` (mean over valid nodes) for a ``Batch``; ``layers``
    (without ``keep``) the node states ``(N_total, D)`` for objectives that read nodes.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch import Tensor, nn
from torch_geometric.nn import GCNConv
from torch_geometric.utils import to_dense_batch

from omnissl.errors import ConfigError
from omnissl.interfaces import Encoded, Encoder
from omnissl.nn.trunk import TransformerTrunk, TrunkConfig, masked_mean
from omnissl.specs import BuildContext, ComponentConfig
from omnissl_graph.encoders import in_dim_from


class GraphTokenEncoderConfig(ComponentConfig):
    """Node-token encoder settings.

    Attributes:
        in_dim: node feature width (None: read from the data source).
        stem_dim (64), stem_layers (1): the GCN stem (PReLU after each layer).
        feat_drop: dropout on the stem's input (0.1).
        trunk: ``"@shared.<name>"`` to use a shared trunk (None: the encoder's own, sized by the fields below).
        dim (64), depth (2), heads (4), mlp_ratio (4.0): the own trunk (ignored with a shared one).
    """

    in_dim: int | None = Field(None, gt=0)
    stem_dim: int = Field(64, gt=0)
    stem_layers: int = Field(1, ge=1)
    feat_drop: float = Field(0.1, ge=0, lt=1)
    trunk: str | None = None
    dim: int = Field(64, gt=0)
    depth: int = Field(2, ge=0)
    heads: int = Field(4, gt=0)
    mlp_ratio: float = Field(4.0, gt=0)


class GraphTokenEncoder(Encoder):
    """GCN stem -> linear projection -> :class:`TransformerTrunk` over the nodes of each graph (see the module)."""

    def __init__(self, in_dim: int, cfg: GraphTokenEncoderConfig, trunk: TransformerTrunk | None = None):
        super().__init__()
        self.cfg = cfg
        dims = [in_dim] + [cfg.stem_dim] * cfg.stem_layers
        self.convs = nn.ModuleList(GCNConv(dims[i], dims[i + 1]) for i in range(cfg.stem_layers))
        self.acts = nn.ModuleList(nn.PReLU() for _ in range(cfg.stem_layers))
        self.mask_token = nn.Parameter(torch.zeros(in_dim))  # GraphMAE's enc_mask_token: zeros, learned
        self.trunk = trunk if trunk is not None else TransformerTrunk(TrunkConfig(dim=cfg.dim, depth=cfg.depth, heads=cfg.heads, mlp_ratio=cfg.mlp_ratio))
        self.project = nn.Linear(cfg.stem_dim, self.trunk.dim)
        self.output_dim = self.trunk.dim

    def forward(self, batch: Any, keep: Tensor | None = None) -> Encoded:
        x, graph_ids = batch.x.float(), getattr(batch, "batch", None)
        if keep is not None:
            x = torch.where(self._kept_nodes(batch, keep).unsqueeze(-1), x, self.mask_token.to(x.dtype))
        h = nn.functional.dropout(x, p=self.cfg.feat_drop, training=self.training)
        for conv, act in zip(self.convs, self.acts):
            h = act(conv(h, batch.edge_index))
        dense, valid = to_dense_batch(self.project(h), graph_ids)
        tokens = self.trunk(dense, padding_mask=~valid, keep=keep)
        padding = ~valid if keep is None else torch.gather(~valid, 1, keep)
        if getattr(batch, "ptr", None) is not None:  # a batch of graphs: one vector per graph
            return Encoded(pooled=masked_mean(tokens, padding), tokens=tokens, padding_mask=padding,
                           layers=[tokens[~padding]] if keep is None else None)
        nodes = tokens[0]
        seeds = getattr(batch, "batch_size", None)  # a neighbour-sampled subgraph: its seed nodes come first
        pooled = nodes[:seeds] if isinstance(seeds, int) and keep is None else nodes
        return Encoded(pooled=pooled, tokens=tokens, padding_mask=padding, layers=[nodes] if keep is None else None)

    @staticmethod
    def _kept_nodes(batch: Any, keep: Tensor) -> Tensor:
        """``(N_total,)`` bool: the nodes ``keep`` names in the padded layout, mapped back to PyG's flat order."""
        ptr = getattr(batch, "ptr", None)
        starts = ptr[:-1] if ptr is not None else torch.zeros(1, dtype=torch.long, device=keep.device)
        counts = (ptr[1:] - ptr[:-1]) if ptr is not None else torch.full((1,), batch.num_nodes, device=keep.device)
        flat = (starts.unsqueeze(1) + keep).masked_fill(keep >= counts.unsqueeze(1), -1).flatten()
        kept = torch.zeros(batch.num_nodes + 1, dtype=torch.bool, device=keep.device)
        kept[flat] = True  # index -1 (a padded slot) lands in the extra last entry, dropped below
        return kept[:-1]


def build_graph_token_encoder(cfg: GraphTokenEncoderConfig, ctx: BuildContext) -> GraphTokenEncoder:
    trunk = None
    if cfg.trunk is not None:
        trunk = ctx.resolve_shared(cfg.trunk)
        if not isinstance(trunk, TransformerTrunk):
            raise ConfigError([f"encoder.trunk: {cfg.trunk} is a {type(trunk).__name__}, not a core.transformer_trunk"])
    return GraphTokenEncoder(in_dim_from(ctx, cfg.in_dim, "encoder"), cfg, trunk)
