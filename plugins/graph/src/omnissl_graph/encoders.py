"""Message-passing encoders on torch-geometric: GAT (GraphMAE's settings), GCN and GIN, with a readout.

Every encoder maps a PyG ``Data`` (one graph, node-level) or ``Batch`` (many graphs, graph-level) to
:class:`omnissl.interfaces.Encoded`:

- ``layers``: the node states after each layer, each ``(N_total, D_l)`` over all nodes of the batch (PyG's
  flat convention, not padded); objectives that work on nodes (GraphMAE, GRACE) read ``layers[-1]``
  (or the concatenation, see :func:`node_states`);
- ``pooled``: per node ``(N, D)`` for a single graph, per seed node ``(S, D)`` for a neighbour-sampled
  subgraph (a ``Data`` with ``batch_size``), and per graph ``(G, D)`` for a ``Batch``, via the readout.

References: Veličković et al. 2018 (GAT); Kipf & Welling 2017 (GCN); Xu et al. 2019 (GIN); GraphMAE's own
GAT/GIN (Hou et al. 2022, github.com/THUDM/GraphMAE ``graphmae/models/{gat,gin}.py``): dropout on the
input of every layer, PReLU after every layer including the last one of an encoder, optional residual and
norm, heads concatenated (``hidden_dim`` is the concatenated width, ``hidden_dim // heads`` per head).
"""

from __future__ import annotations

import copy
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn
from torch_geometric.nn import GATConv, GCNConv, GINConv, global_add_pool, global_max_pool, global_mean_pool

from omnissl.errors import ConfigError
from omnissl.interfaces import Encoded, Encoder
from omnissl.specs import BuildContext, ComponentConfig

Readout = Literal["auto", "node", "mean", "sum", "max"]
_POOLS = {"mean": global_mean_pool, "sum": global_add_pool, "max": global_max_pool}


def make_activation(name: str) -> nn.Module:
    """``prelu`` | ``relu`` | ``elu`` | ``gelu`` | ``identity``."""
    table = {"prelu": nn.PReLU, "relu": nn.ReLU, "elu": nn.ELU, "gelu": nn.GELU, "identity": nn.Identity}
    if name not in table:
        raise ConfigError([f"activation: unknown {name!r}; choose one of {', '.join(table)}"])
    return table[name]()


def make_norm(name: str | None, dim: int) -> nn.Module:
    """``batchnorm`` | ``layernorm`` | ``None`` (identity), as GraphMAE's ``create_norm``."""
    if name is None or name == "none":
        return nn.Identity()
    if name == "batchnorm":
        return nn.BatchNorm1d(dim)
    if name == "layernorm":
        return nn.LayerNorm(dim)
    raise ConfigError([f"norm: unknown {name!r}; choose batchnorm, layernorm or none"])


def node_states(encoded: Encoded, concat_layers: bool = False) -> Tensor:
    """All node states of a batch, ``(N_total, D)``: the last layer, or every layer concatenated."""
    if not encoded.layers:
        raise ValueError("graph objectives need an encoder that returns per-layer node states in Encoded.layers")
    return torch.cat(encoded.layers, dim=-1) if concat_layers else encoded.layers[-1]


def with_x(batch: Any, x: Tensor) -> Any:
    """A shallow copy of a PyG batch with new node features (the other tensors are shared)."""
    out = copy.copy(batch)
    out.x = x
    return out


def in_dim_from(ctx: BuildContext, configured: int | None, who: str) -> int:
    """Input feature width: the config's ``in_dim`` or the data source's ``num_features``."""
    if configured is not None:
        return configured
    num = getattr(ctx.data, "num_features", None) if ctx is not None else None
    if num is None:
        raise ConfigError([f"{who}.in_dim: no data source to size the input from; set in_dim to the node feature width"])
    return int(num)


class GraphEncoderConfig(ComponentConfig):
    """Fields shared by the graph encoders.

    Attributes:
        in_dim: node feature width; ``None`` (default) reads it from the task's data source.
        hidden_dim: width of the last layer's output, the node representation (512, GraphMAE Cora).
        inner_dim: width of every layer before the last (``None``, default: ``hidden_dim``); GRACE's encoder
            is ``inner_dim = 2 * hidden_dim``.
        num_layers: message-passing layers (2).
        activation: ``prelu`` (default), ``relu``, ``elu``, ``gelu``, ``identity``.
        feat_drop: dropout on each layer's input (0.2, GraphMAE ``in_drop``).
        norm: ``none`` (default), ``batchnorm`` or ``layernorm`` after each layer.
        residual: add a (projected) skip connection around each layer (False).
        readout: ``auto`` (default: per node for a single graph, ``mean`` for a batch of graphs), ``node``,
            ``mean``, ``sum``, ``max``.
        concat_layers: pool the concatenation of every layer's node states (InfoGraph/GraphCL style);
            ``output_dim`` becomes the sum of the layer widths (False).
    """

    in_dim: int | None = Field(None, gt=0)
    hidden_dim: int = Field(512, gt=0)
    inner_dim: int | None = Field(None, gt=0)
    num_layers: int = Field(2, ge=1)
    activation: Literal["prelu", "relu", "elu", "gelu", "identity"] = "prelu"
    feat_drop: float = Field(0.2, ge=0, lt=1)
    norm: Literal["none", "batchnorm", "layernorm"] = "none"
    residual: bool = False
    readout: Readout = "auto"
    concat_layers: bool = False


class MessagePassingEncoder(Encoder):
    """A stack of message-passing layers with dropout, norm, activation, residual and a readout.

    Subclasses fill ``self.convs``: layer ``i`` maps ``(N, dims[i])`` to ``(N, dims[i + 1])`` with
    ``dims = self.layer_dims()``.

    Shapes:
        ``batch.x``: ``(N, F)``, ``batch.edge_index``: ``(2, E)`` -> ``Encoded(pooled, layers)`` as in the
        module docstring.
    """

    def __init__(self, in_dim: int, cfg: GraphEncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.in_dim = in_dim
        self.convs = nn.ModuleList()
        dims = self.layer_dims()
        self.norms = nn.ModuleList(make_norm(cfg.norm, width) for width in dims[1:])
        self.acts = nn.ModuleList(make_activation(cfg.activation) for _ in range(cfg.num_layers))
        self.skips = nn.ModuleList(
            (nn.Identity() if dims[i] == dims[i + 1] else nn.Linear(dims[i], dims[i + 1], bias=False)) if cfg.residual else nn.Identity()
            for i in range(cfg.num_layers)
        )
        self.output_dim = sum(dims[1:]) if cfg.concat_layers else cfg.hidden_dim

    def layer_dims(self) -> list[int]:
        """``[in_dim, width of layer 1, ..., hidden_dim]``."""
        inner = self.cfg.inner_dim or self.cfg.hidden_dim
        return [self.in_dim] + [inner] * (self.cfg.num_layers - 1) + [self.cfg.hidden_dim]

    def forward(self, batch: Any, keep: Tensor | None = None) -> Encoded:
        h, edge_index = batch.x.float(), batch.edge_index
        layers = []
        for conv, norm, act, skip in zip(self.convs, self.norms, self.acts, self.skips, strict=True):
            h_in = F.dropout(h, p=self.cfg.feat_drop, training=self.training)
            out = norm(conv(h_in, edge_index))
            if self.cfg.residual:
                out = out + skip(h_in)
            h = act(out)
            layers.append(h)
        nodes = torch.cat(layers, dim=-1) if self.cfg.concat_layers else h
        return Encoded(pooled=readout(nodes, batch, self.cfg.readout), layers=layers)


def readout(nodes: Tensor, batch: Any, how: str) -> Tensor:
    """Per-node, per-seed-node or per-graph representations (see the module docstring)."""
    graph_ids = getattr(batch, "batch", None)
    if how == "auto":
        how = "mean" if graph_ids is not None and getattr(batch, "ptr", None) is not None else "node"
    if how == "node":
        # a neighbour-sampled subgraph's seed nodes come first; a Batch of graphs also has a batch_size (its graph count)
        seeds = getattr(batch, "batch_size", None) if getattr(batch, "ptr", None) is None else None
        return nodes[:seeds] if isinstance(seeds, int) else nodes
    if graph_ids is None:
        graph_ids = torch.zeros(nodes.shape[0], dtype=torch.long, device=nodes.device)
        size = 1
    else:
        size = batch.num_graphs
    return _POOLS[how](nodes, graph_ids, size=size)


class GATEncoderConfig(GraphEncoderConfig):
    """GAT settings; defaults are GraphMAE's Cora encoder (``configs.yml``: 512 hidden, 4 heads, 2 layers).

    Attributes:
        heads: attention heads per layer, concatenated (4); ``hidden_dim`` must be divisible by it.
        attn_drop: dropout on attention coefficients (0.1).
        negative_slope: LeakyReLU slope of the attention scores (0.2).
        init: ``graphmae`` (default): GraphMAE's ``GATConv.reset_parameters`` (``xavier_normal_`` with gain
            ``calculate_gain('relu')`` on the projection and both attention vectors, zero bias), see
            :func:`graphmae_gat_init`; ``pyg``: PyG's default (Glorot uniform, gain 1, so weights sqrt(2)
            smaller and, in a 4-head encoder, attention vectors about 1.5x larger).
    """

    heads: int = Field(4, ge=1)
    attn_drop: float = Field(0.1, ge=0, lt=1)
    negative_slope: float = Field(0.2, ge=0)
    init: Literal["graphmae", "pyg"] = "graphmae"


def graphmae_gat_init(conv: GATConv) -> GATConv:
    """Re-initialise a PyG ``GATConv`` as GraphMAE's own ``GATConv.reset_parameters`` (``graphmae/models/gat.py``).

    ``xavier_normal_(gain=calculate_gain('relu'))`` on ``fc.weight`` (PyG ``lin.weight``) and on ``attn_l`` /
    ``attn_r`` (PyG ``att_src`` / ``att_dst``, the same ``(1, heads, C)`` shape, hence the same fans), bias 0.
    """
    gain = nn.init.calculate_gain("relu")
    nn.init.xavier_normal_(conv.lin.weight, gain=gain)
    nn.init.xavier_normal_(conv.att_src, gain=gain)
    nn.init.xavier_normal_(conv.att_dst, gain=gain)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    return conv


class GATEncoder(MessagePassingEncoder):
    """Multi-head GAT: ``h' = act(norm(||_k sum_j alpha^k_ij W^k h_j) [+ res])`` with self-loops.

    Per-head width ``hidden_dim // heads``; heads concatenated, as GraphMAE's ``enc_num_hidden``.
    """

    def __init__(self, in_dim: int, cfg: GATEncoderConfig):
        super().__init__(in_dim, cfg)
        for key in ("hidden_dim", "inner_dim"):
            if (getattr(cfg, key) or 0) % cfg.heads:
                raise ConfigError([f"encoder.{key}: {getattr(cfg, key)} is not divisible by encoder.heads={cfg.heads}"])
        dims = self.layer_dims()
        for i in range(cfg.num_layers):
            conv = GATConv(dims[i], dims[i + 1] // cfg.heads, heads=cfg.heads, concat=True, negative_slope=cfg.negative_slope, dropout=cfg.attn_drop)
            self.convs.append(graphmae_gat_init(conv) if cfg.init == "graphmae" else conv)
            if cfg.init == "graphmae" and isinstance(self.skips[i], nn.Linear):  # the official res_fc init
                nn.init.xavier_normal_(self.skips[i].weight, gain=nn.init.calculate_gain("relu"))


class GCNEncoder(MessagePassingEncoder):
    """GCN: ``h' = act(D^-1/2 (A + I) D^-1/2 h W)``; GRACE's encoder on Cora: 2 layers, widths 256 and 128, ReLU."""

    def __init__(self, in_dim: int, cfg: GraphEncoderConfig):
        super().__init__(in_dim, cfg)
        dims = self.layer_dims()
        for i in range(cfg.num_layers):
            self.convs.append(GCNConv(dims[i], dims[i + 1], cached=False))


class GINEncoderConfig(GraphEncoderConfig):
    """GIN settings; defaults are GraphMAE's MUTAG encoder (32 hidden, 5 layers, batchnorm, sum readout).

    Attributes:
        train_eps: learn GIN's epsilon (False, as GraphMAE's ``learn_eps=False``).
    """

    hidden_dim: int = Field(32, gt=0)
    num_layers: int = Field(5, ge=1)
    norm: Literal["none", "batchnorm", "layernorm"] = "batchnorm"
    readout: Readout = "sum"
    train_eps: bool = False


def gin_mlp(in_dim: int, hidden_dim: int, out_dim: int, norm: str, activation: str) -> nn.Sequential:
    """GraphMAE's two-layer GIN MLP: Linear, norm, activation, Linear."""
    return nn.Sequential(nn.Linear(in_dim, hidden_dim), make_norm(norm, hidden_dim), make_activation(activation), nn.Linear(hidden_dim, out_dim))


class GINEncoder(MessagePassingEncoder):
    """GIN: ``h' = act(norm(MLP((1 + eps) h_i + sum_j h_j)))`` (sum aggregation, GraphMAE's ApplyNodeFunc)."""

    def __init__(self, in_dim: int, cfg: GINEncoderConfig):
        super().__init__(in_dim, cfg)
        dims = self.layer_dims()
        for i in range(cfg.num_layers):
            mlp = gin_mlp(dims[i], dims[i + 1], dims[i + 1], cfg.norm, cfg.activation)
            self.convs.append(GINConv(mlp, train_eps=cfg.train_eps))


def build_gat(cfg: GATEncoderConfig, ctx: BuildContext) -> GATEncoder:
    return GATEncoder(in_dim_from(ctx, cfg.in_dim, "encoder"), cfg)


def build_gcn(cfg: GraphEncoderConfig, ctx: BuildContext) -> GCNEncoder:
    return GCNEncoder(in_dim_from(ctx, cfg.in_dim, "encoder"), cfg)


def build_gin(cfg: GINEncoderConfig, ctx: BuildContext) -> GINEncoder:
    return GINEncoder(in_dim_from(ctx, cfg.in_dim, "encoder"), cfg)
