"""Graph node-token encoder: a GNN stem, a projection to the trunk's width, then a transformer over tokens.

The graph's door into a cross-domain run: the transformer may be a shared trunk (``trunk: "@shared.<name>"``),
so graphs train the same blocks as tables, speech, video and volumes. What a token is depends on the data:

- **One graph (node-level: Cora, ``graph.sbm``, a neighbour-sampled subgraph): hop tokens per node.** Each node
  becomes a sequence of ``hops + 1`` tokens ``[h, Â h, Â² h, …, Â^K h]``, where ``h`` is the projected GCN stem
  output and ``Â`` the GCN-normalised adjacency with self-loops (PyG ``gcn_norm``, propagated with PyG
  ``SimpleConv`` so gradients flow into the stem). The trunk runs over the ``K + 1`` tokens of each node, batched
  over nodes ``(N, K+1, D)``, and a node is read out from its hop outputs. This is NAGphormer's Hop2Token (Chen,
  Gao, Li and He, "NAGphormer: A Tokenized Graph Transformer for Node Classification in Large Graphs", ICLR
  2023; code github.com/JHL-HUST/NAGphormer: ``utils.re_features`` builds the hop tokens, ``model.py`` the
  readout). Attention over all ``N`` nodes as one sequence (this encoder's first design) oversmoothed: on Cora a
  random encoder's node embeddings had a per-dimension spread over nodes of 0.09 and its linear probe sat at the
  majority class; it also cost ``O(N²)``. Hop tokens keep each node's own information in token 0 and cost
  ``O(N (K+1)²)`` attention plus ``K`` sparse products. Departures from NAGphormer, and why: the hop tokens
  propagate the GCN stem's output rather than the raw features (the stem is this encoder family's modality
  stem, and the trunk is shared); no Laplacian eigenvector positional encoding (it needs an eigendecomposition
  of the whole graph, which does not scale, and the stem already carries structure).
  ``hops`` defaults to 3, NAGphormer's Cora setting (``commands.txt``: 3 on Cora, 7 on CiteSeer/PubMed, 10 on
  Reddit). The node is the mean of its hop outputs (``readout: mean``, default);
  ``readout: attention`` is NAGphormer's ``out = z_0 + Σ_k softmax_k(w·[z_0 ‖ z_k]) z_k`` over hops ``k ≥ 1``,
  which only supervised or fine-tuning losses train. The stem output is standardised per channel over the
  graph's nodes (PyG ``InstanceNorm``, no affine, no running statistics) before the projection: Cora's
  row-normalised features give stem outputs with a spread over nodes of 0.002 against the projection's bias of
  0.05, so without it every node enters the trunk as nearly the same vector.
- **A batch of small graphs (graph-level): nodes as tokens.** ``to_dense_batch`` pads the batch to
  ``(G, N_max, D)`` with a padding mask and the trunk attends over each graph's nodes (GraphTrans, Wu et al.,
  NeurIPS 2021: message passing then global attention); the graph is the mean of its valid node outputs.

``keep=`` (masked objectives such as core.data2vec) indexes tokens in that layout: ``(N, K')`` hop indices per
node for one graph, ``(G, K')`` node indices per graph for a batch. Masked-out input is hidden from the stem
GraphMAE's way (Hou et al. 2022): a node whose own token is not kept (hop 0 for one graph; the node itself for a
batch) has its input features replaced by a learned [MASK] vector *before* message passing, so neither its own
hop tokens nor its neighbours' carry the hidden features.

Large graphs: a neighbour-sampled subgraph (``graph.*`` with ``num_neighbors``; seeds first, ``batch_size`` set)
propagates over the subgraph and builds hop tokens for the seed nodes only, ``(S, K+1, D)``, so a step never
holds an ``(N, K+1, D)`` tensor for the whole graph; sample at least ``stem_layers + hops`` hops of neighbours
for the seeds' tokens to be exact. Full-graph training builds ``(N, K+1, D)``, which grows linearly in ``N``.

Shapes:
    a PyG ``Data`` (one graph) -> ``Encoded``: ``tokens`` ``(M, K+1 or K', D)`` with ``M`` the nodes (or seed
    nodes), ``padding_mask`` None, ``pooled`` ``(M, D)``, ``layers`` (without ``keep``) ``[pooled]``.
    a PyG ``Batch`` -> ``tokens`` ``(G, N_max or K', D)``, ``padding_mask`` ``(G, N_max or K')``, ``pooled``
    ``(G, D)``, ``layers`` (without ``keep``) the node states ``(N_total, D)``.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from einops import repeat
from pydantic import Field
from torch import Tensor, nn
from torch_geometric.nn import GCNConv, InstanceNorm, SimpleConv
from torch_geometric.nn.conv.gcn_conv import gcn_norm
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
        hops: propagation steps ``K`` of the hop tokens of one graph (3, NAGphormer's Cora setting); each node
            has ``K + 1`` tokens.
        readout: how a node is read from its hop outputs: ``mean`` over hops (default), ``attention``
            (NAGphormer's hop attention), or ``hop0`` (the node's own token). Masked objectives never train the
            attention readout (they read tokens), so it stays at its random init after self-supervised
            pretraining; the mean has no weights. On Cora a random encoder probes at 0.57 (mean), 0.47
            (attention), 0.53 (hop0).
        trunk: ``"@shared.<name>"`` to use a shared trunk (None: the encoder's own, sized by the fields below).
        dim (64), depth (2), heads (4), mlp_ratio (4.0): the own trunk (ignored with a shared one).
    """

    in_dim: int | None = Field(None, gt=0)
    stem_dim: int = Field(64, gt=0)
    stem_layers: int = Field(1, ge=1)
    feat_drop: float = Field(0.1, ge=0, lt=1)
    hops: int = Field(3, ge=0)
    readout: Literal["mean", "attention", "hop0"] = "mean"
    trunk: str | None = None
    dim: int = Field(64, gt=0)
    depth: int = Field(2, ge=0)
    heads: int = Field(4, gt=0)
    mlp_ratio: float = Field(4.0, gt=0)


class HopAttentionReadout(nn.Module):
    """NAGphormer's readout (``model.py``): ``z_0 + Σ_{k≥1} softmax_k(w·[z_0 ‖ z_k]) z_k``.

    Shapes:
        ``(M, K+1, D)`` -> ``(M, D)``.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.score = nn.Linear(2 * dim, 1)

    def forward(self, z: Tensor) -> Tensor:
        own, hops = z[:, 0], z[:, 1:]
        if not hops.shape[1]:
            return own
        weights = self.score(torch.cat([repeat(own, "m d -> m k d", k=hops.shape[1]), hops], dim=-1)).softmax(dim=1)
        return own + (weights * hops).sum(dim=1)


class GraphTokenEncoder(Encoder):
    """GCN stem -> linear projection -> :class:`TransformerTrunk` over hop tokens (one graph) or nodes (a batch)."""

    def __init__(self, in_dim: int, cfg: GraphTokenEncoderConfig, trunk: TransformerTrunk | None = None):
        super().__init__()
        self.cfg = cfg
        dims = [in_dim] + [cfg.stem_dim] * cfg.stem_layers
        self.convs = nn.ModuleList(GCNConv(dims[i], dims[i + 1]) for i in range(cfg.stem_layers))
        self.acts = nn.ModuleList(nn.PReLU() for _ in range(cfg.stem_layers))
        self.mask_token = nn.Parameter(torch.zeros(in_dim))  # GraphMAE's enc_mask_token: zeros, learned
        self.trunk = trunk if trunk is not None else TransformerTrunk(TrunkConfig(dim=cfg.dim, depth=cfg.depth, heads=cfg.heads, mlp_ratio=cfg.mlp_ratio))
        self.project = nn.Linear(cfg.stem_dim, self.trunk.dim)
        self.node_norm = InstanceNorm(cfg.stem_dim, affine=False)  # statistics of the graph at hand, in eval too
        self.propagate = SimpleConv(aggr="sum")  # x_i' = Σ_j w_ji x_j: with gcn_norm's weights, Â x
        self.readout = HopAttentionReadout(self.trunk.dim) if cfg.readout == "attention" else None
        self.output_dim = self.trunk.dim

    def stem(self, batch: Any, kept_nodes: Tensor | None, standardize: bool = False) -> Tensor:
        """Projected GCN stem output ``(N_total, D)``; nodes not in ``kept_nodes`` enter as the [MASK] vector;
        ``standardize``: each stem channel scaled to zero mean and unit variance over the graph's nodes first."""
        x = batch.x.float()
        if kept_nodes is not None:
            x = torch.where(kept_nodes.unsqueeze(-1), x, self.mask_token.to(x.dtype))
        h = nn.functional.dropout(x, p=self.cfg.feat_drop, training=self.training)
        for conv, act in zip(self.convs, self.acts):
            h = act(conv(h, batch.edge_index))
        return self.project(self.node_norm(h) if standardize else h)

    def forward(self, batch: Any, keep: Tensor | None = None) -> Encoded:
        if getattr(batch, "ptr", None) is not None:
            return self._graphs(batch, keep)
        return self._hop_tokens(batch, keep)

    def _hop_tokens(self, batch: Any, keep: Tensor | None) -> Encoded:
        n = batch.num_nodes
        seeds = getattr(batch, "batch_size", None)  # a neighbour-sampled subgraph: its seed nodes come first
        m = seeds if isinstance(seeds, int) else n
        kept_nodes = None
        if keep is not None:  # a node whose hop-0 token is masked hides its features from the stem
            kept_nodes = torch.ones(n, dtype=torch.bool, device=keep.device)
            kept_nodes[:m] = (keep == 0).any(dim=1)
        h = self.stem(batch, kept_nodes, standardize=True).float()  # neighbour sums in float32 under bf16 autocast
        edge_index, weight = gcn_norm(batch.edge_index, num_nodes=n, add_self_loops=True, dtype=h.dtype)
        hops = [h[:m]]
        for _ in range(self.cfg.hops):
            h = self.propagate(h, edge_index, weight)
            hops.append(h[:m])
        tokens = self.trunk(torch.stack(hops, dim=1), keep=keep)  # (m, K+1 or K', D)
        if keep is not None:
            return Encoded(pooled=tokens.mean(dim=1), tokens=tokens, padding_mask=None)
        if self.readout is not None:
            pooled = self.readout(tokens)
        else:
            pooled = tokens[:, 0] if self.cfg.readout == "hop0" else tokens.mean(dim=1)
        return Encoded(pooled=pooled, tokens=tokens, padding_mask=None, layers=[pooled])

    def _graphs(self, batch: Any, keep: Tensor | None) -> Encoded:
        kept_nodes = None if keep is None else self._kept_nodes(batch, keep)
        dense, valid = to_dense_batch(self.stem(batch, kept_nodes), batch.batch)
        tokens = self.trunk(dense, padding_mask=~valid, keep=keep)
        padding = ~valid if keep is None else torch.gather(~valid, 1, keep)
        return Encoded(pooled=masked_mean(tokens, padding), tokens=tokens, padding_mask=padding,
                       layers=[tokens[~padding]] if keep is None else None)

    @staticmethod
    def _kept_nodes(batch: Any, keep: Tensor) -> Tensor:
        """``(N_total,)`` bool: the nodes ``keep`` names in the padded layout, mapped back to PyG's flat order."""
        ptr = batch.ptr
        starts, counts = ptr[:-1], ptr[1:] - ptr[:-1]
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
