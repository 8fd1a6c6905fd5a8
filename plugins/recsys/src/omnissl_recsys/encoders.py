"""Recommender encoders: matrix factorisation, LightGCN, BM3's graph encoder and the two-tower model.

Every encoder scores a user-item pair by a dot product and exposes the same surface:

- ``forward(batch) -> Encoded`` for an interaction batch ``{"user": (B,), "pos": (B,), "neg": (B, n)?}``:
  ``tokens`` is ``(B, 2 + n, D)`` holding the rows ``[user, pos, neg_1..n]``; ``pooled`` is the interaction's
  representation ``[user ‖ pos]`` ``(B, 2D)`` (so gradients of ``pooled`` reach both sides: ``output_dim = 2D``).
- ``tables(view=None) -> (users (U, D), items (I, D))``: the full embedding tables used to rank the whole
  catalogue (``view`` may carry a perturbed adjacency ``"adj"`` or per-layer ``"noise"`` for graph models).
- ``dim``: ``D``, the scoring dimension.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange, reduce
from pydantic import Field
from torch import Tensor, nn

from omnissl.interfaces import Encoded, Encoder
from omnissl.specs import BuildContext, ComponentConfig
from omnissl_recsys.graph import symmetric_spmm


def _rows(batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """``(users (B,), items (B, 1 + n))`` of an interaction batch (positive first, then negatives)."""
    items = batch["pos"].unsqueeze(1)
    if batch.get("neg") is not None:
        items = torch.cat([items, batch["neg"]], dim=1)
    return batch["user"], items


class RecommenderEncoder(Encoder):
    """Shared ``forward`` over :meth:`tables`; subclasses may gather rows more cheaply (:meth:`rows`)."""

    dim: int

    def tables(self, view: dict[str, Any] | None = None) -> tuple[Tensor, Tensor]:  # pragma: no cover - interface
        raise NotImplementedError

    def rows(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """``(users (B, D), items (B, 1 + n, D))`` for the batch (and its view keys)."""
        users, items = self.tables(batch)
        u, it = _rows(batch)
        return users[u], items[it]

    def forward(self, batch: dict[str, Tensor], keep: Tensor | None = None) -> Encoded:
        u, it = self.rows(batch)
        tokens = torch.cat([u.unsqueeze(1), it], dim=1)
        return Encoded(pooled=torch.cat([u, it[:, 0]], dim=1), tokens=tokens)


# ----------------------------------------------------------------------------------------------------- MF
class MFConfig(ComponentConfig):
    """``dim`` (64): embedding size of users and items; ``init_std`` (0.1) of the normal initialisation."""

    dim: int = Field(64, gt=0)
    init_std: float = Field(0.1, gt=0)


class MatrixFactorization(RecommenderEncoder):
    """Matrix factorisation: one free vector per user and per item (Rendle et al., BPR, UAI 2009).

    Shapes: ``tables() -> ((U, D), (I, D))``.
    """

    def __init__(self, num_users: int, num_items: int, cfg: MFConfig):
        super().__init__()
        self.dim, self.output_dim = cfg.dim, 2 * cfg.dim
        self.user = nn.Embedding(num_users, cfg.dim)
        self.item = nn.Embedding(num_items, cfg.dim)
        nn.init.normal_(self.user.weight, std=cfg.init_std)
        nn.init.normal_(self.item.weight, std=cfg.init_std)

    def tables(self, view=None):
        return self.user.weight, self.item.weight

    def rows(self, batch):
        u, it = _rows(batch)
        return self.user(u), self.item(it)

    def ego(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """The free parameters of the batch's rows, for L2 regularisation: ``((B, D), (B, 1 + n, D))``."""
        return self.rows(batch)


# ----------------------------------------------------------------------------------------------- LightGCN
class LightGCNConfig(ComponentConfig):
    """``dim`` (64), ``num_layers`` (3) of propagation, ``include_ego`` (True): average layers ``0..L``
    (LightGCN eq. 8) or only ``1..L`` (SimGCL/XSimGCL's reference code); ``init_std`` (0.1).
    """

    dim: int = Field(64, gt=0)
    num_layers: int = Field(3, ge=1)
    include_ego: bool = True
    init_std: float = Field(0.1, gt=0)


class LightGCN(RecommenderEncoder):
    """LightGCN: ``E^(k+1) = A_hat E^(k)``, output the mean of the layers (He et al., SIGIR 2020, eqs. 7-8).

    ``A_hat`` is the training graph's normalised adjacency, a sparse CSR tensor held by the data source on
    the device; a view may replace it by a subgraph's (``view["edge_keep"]``: kept training edges, SGL) or perturb each layer's output with
    ``sign(E) * view["noise"][k]`` (SimGCL, Yu et al., SIGIR 2022, eq. 7; the noise is already scaled to
    norm ``eps`` by the view generator).

    Shapes: :meth:`propagate` -> ``L + 1`` tables ``(U + I, D)``; ``tables() -> ((U, D), (I, D))``.
    """

    def __init__(self, num_users: int, num_items: int, graph, cfg: LightGCNConfig):
        super().__init__()
        self.graph = graph  # BipartiteGraph of the training edges, on the data source's device
        self.num_users, self.num_items = num_users, num_items
        self.dim, self.output_dim, self.num_layers, self.include_ego = cfg.dim, 2 * cfg.dim, cfg.num_layers, cfg.include_ego
        self.adjacency = graph.normalized()  # not a parameter or buffer: rebuilt from the source, never saved
        self.embedding = nn.Embedding(num_users + num_items, cfg.dim)
        nn.init.normal_(self.embedding.weight, std=cfg.init_std)

    def propagate(self, view: dict[str, Any] | None = None) -> list[Tensor]:
        view = view or {}
        adj = self.graph.normalized(view["edge_keep"]) if view.get("edge_keep") is not None else self.adjacency
        noise = view.get("noise")
        if adj.device != self.embedding.weight.device:
            raise RuntimeError(f"LightGCN's graph is on {adj.device} but its embeddings on {self.embedding.weight.device}: move the data source first")
        layers = [self.embedding.weight]
        for k in range(self.num_layers):
            e = symmetric_spmm(adj, layers[-1].float())
            if noise is not None:
                e = e + torch.sign(e) * noise[k]
            layers.append(e)
        return layers

    def combine(self, layers: list[Tensor]) -> tuple[Tensor, Tensor]:
        """Mean over layers, split into user and item tables."""
        used = layers if self.include_ego else layers[1:]
        mean = reduce(torch.stack(used), "l n d -> n d", "mean")
        return mean[: self.num_users], mean[self.num_users :]

    def tables(self, view=None):
        return self.combine(self.propagate(view))

    def ego(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Layer-0 rows of the batch (LightGCN regularises only these): ``((B, D), (B, 1 + n, D))``."""
        u, it = _rows(batch)
        return self.embedding(u), self.embedding(it + self.num_users)


# -------------------------------------------------------------------------------------------- BM3 encoder
class BM3EncoderConfig(LightGCNConfig):
    """LightGCN fields with BM3's defaults: ``num_layers`` (1; BM3 README: 1-2), ``init_std`` (0.1)."""

    num_layers: int = Field(1, ge=1)


class BM3Encoder(LightGCN):
    """BM3's online encoder: LightGCN on ids, item output plus its id embedding, then the shared predictor.

    Reference: Zhou et al., "Bootstrap Latent Representations for Multi-modal Recommendation", WWW 2023,
    sec. 3.2; reference code github.com/enoche/BM3 (``src/models/bm3.py``): items return ``h_g + h_id`` and
    ranking uses predictor outputs on both sides. :meth:`online` gives the pre-predictor tables.
    """

    def __init__(self, num_users: int, num_items: int, graph, cfg: BM3EncoderConfig):
        super().__init__(num_users, num_items, graph, cfg)
        self.predictor = nn.Linear(cfg.dim, cfg.dim)
        nn.init.xavier_normal_(self.predictor.weight)

    def online(self, view=None) -> tuple[Tensor, Tensor]:
        users, items = self.combine(self.propagate(view))
        return users, items + self.embedding.weight[self.num_users :]

    def tables(self, view=None):
        users, items = self.online(view)
        return self.predictor(users), self.predictor(items)


# ----------------------------------------------------------------------------------------------- two-tower
class TwoTowerConfig(ComponentConfig):
    """``dim`` (64) of the tower outputs, ``token_dim`` (32) of each feature embedding, ``hidden_dim`` (128)
    of each tower's MLP; ``normalize`` (True): L2-normalised outputs (Yao et al. 2021 score by cosine / τ).
    """

    dim: int = Field(64, gt=0)
    token_dim: int = Field(32, gt=0)
    hidden_dim: int = Field(128, gt=0)
    normalize: bool = True


class TwoTower(RecommenderEncoder):
    """Two-tower retrieval model: a user tower over the user id and an item tower over the item's fields.

    Reference: Yi et al., "Sampling-Bias-Corrected Neural Modeling for Large Corpus Item Recommendations",
    RecSys 2019; Yao et al., "Self-supervised Learning for Large-scale Item Recommendations", CIKM 2021,
    sec. 3 (item features as categorical fields; each field's tokens are embedded and averaged, the field
    vectors concatenated and passed through an MLP). ``keep`` ``(B, T)`` masks token slots: a masked
    field contributes a zero vector (Yao et al.'s feature masking).

    Shapes: ``user_vectors (B,) -> (B, D)``; ``item_vectors (B,), keep (B, T)? -> (B, D)``.
    """

    def __init__(self, num_users: int, item_tokens: Tensor, slot_field: Tensor, vocab_size: int, cfg: TwoTowerConfig):
        super().__init__()
        self.dim, self.output_dim, self.normalize = cfg.dim, 2 * cfg.dim, cfg.normalize
        self.item_tokens = item_tokens  # (I, T) on the data source's device
        num_fields = int(slot_field.max()) + 1
        self.register_buffer("slot_onehot", F.one_hot(slot_field.cpu(), num_fields).float(), persistent=False)  # (T, F)
        self.user = nn.Embedding(num_users, cfg.token_dim)
        self.tokens = nn.Embedding(vocab_size, cfg.token_dim, padding_idx=0)
        nn.init.normal_(self.user.weight, std=0.1)
        nn.init.normal_(self.tokens.weight, std=0.1)
        with torch.no_grad():
            self.tokens.weight[0].zero_()
        self.user_mlp = nn.Sequential(nn.Linear(cfg.token_dim, cfg.hidden_dim), nn.ReLU(), nn.Linear(cfg.hidden_dim, cfg.dim))
        self.item_mlp = nn.Sequential(nn.Linear(num_fields * cfg.token_dim, cfg.hidden_dim), nn.ReLU(), nn.Linear(cfg.hidden_dim, cfg.dim))

    def _out(self, x: Tensor) -> Tensor:
        return F.normalize(x, dim=-1) if self.normalize else x

    def user_vectors(self, users: Tensor) -> Tensor:
        return self._out(self.user_mlp(self.user(users)))

    def item_vectors(self, items: Tensor, keep: Tensor | None = None) -> Tensor:
        if self.item_tokens.device != items.device:
            self.item_tokens = self.item_tokens.to(items.device)
        tok = self.item_tokens[items]  # (B, T)
        present = tok > 0
        if keep is not None:
            present = present & keep
        emb = self.tokens(tok) * present.unsqueeze(-1)
        per_field = torch.einsum("btd,tf->bfd", emb, self.slot_onehot)
        count = (present.float() @ self.slot_onehot).clamp_min(1.0)  # mean over each field's present tokens
        fields = rearrange(per_field / count.unsqueeze(-1), "b f d -> b (f d)")
        return self._out(self.item_mlp(fields))

    def rows(self, batch):
        u, it = _rows(batch)
        items = self.item_vectors(it.flatten())
        return self.user_vectors(u), rearrange(items, "(b n) d -> b n d", b=u.shape[0])

    @torch.no_grad()
    def tables(self, view=None, chunk: int = 65_536):
        users = torch.cat([self.user_vectors(torch.arange(s, min(s + chunk, self.user.num_embeddings), device=self.user.weight.device))
                           for s in range(0, self.user.num_embeddings, chunk)])
        n = self.item_tokens.shape[0]
        items = torch.cat([self.item_vectors(torch.arange(s, min(s + chunk, n), device=self.user.weight.device)) for s in range(0, n, chunk)])
        return users, items


# ------------------------------------------------------------------------------------------------ factories
def _need_source(ctx: BuildContext, what: str):
    if ctx.data is None or not hasattr(ctx.data, "num_items"):
        from omnissl.errors import ConfigError

        raise ConfigError([f"{what} needs a recsys data source (recsys.movielens, recsys.csv, recsys.sparse or recsys.generated) in the same task"])
    return ctx.data


def build_mf(cfg: MFConfig, ctx: BuildContext) -> MatrixFactorization:
    src = _need_source(ctx, "recsys.mf")
    return MatrixFactorization(src.num_users, src.num_items, cfg)


def build_lightgcn(cfg: LightGCNConfig, ctx: BuildContext) -> LightGCN:
    src = _need_source(ctx, "recsys.lightgcn")
    return LightGCN(src.num_users, src.num_items, src.graph, cfg)


def build_bm3_encoder(cfg: BM3EncoderConfig, ctx: BuildContext) -> BM3Encoder:
    src = _need_source(ctx, "recsys.bm3")
    return BM3Encoder(src.num_users, src.num_items, src.graph, cfg)


def build_two_tower(cfg: TwoTowerConfig, ctx: BuildContext) -> TwoTower:
    src = _need_source(ctx, "recsys.two_tower")
    f = src.features
    return TwoTower(src.num_users, f.tokens, f.slot_field, f.vocab_size, cfg)
