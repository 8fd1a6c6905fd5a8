"""Recommender objectives: BPR, SGL / SimGCL, XSimGCL, two-tower in-batch softmax with Yao et al.'s SSL, BM3.

Every objective reads the interaction batch ``views.inputs[0]`` (``{"user", "pos", "neg"?}``) and, for the
self-supervised ones, the further view inputs its view generator documents.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from omnissl.interfaces import Encoder, Objective, ObjectiveOutput
from omnissl.specs import BuildContext, ComponentConfig


def bpr_loss(tokens: Tensor) -> Tensor:
    """``-mean log sigmoid(<u, i+> - <u, i->)`` over every negative (Rendle et al., UAI 2009, eq. 4).

    Shapes: ``tokens (B, 2 + n, D)`` rows ``[user, pos, neg_1..n]`` -> scalar.
    """
    if tokens.shape[1] < 3:
        raise ValueError("BPR needs at least one negative per interaction: use a view generator with num_negatives >= 1")
    scores = torch.einsum("bd,bnd->bn", tokens[:, 0], tokens[:, 1:])
    return -F.logsigmoid(scores[:, :1] - scores[:, 1:]).mean()


def first_occurrence(ids: Tensor) -> Tensor:
    """``(B,)`` bool: True at the first position of each distinct id (a ``unique`` without host sync)."""
    pos = torch.arange(ids.shape[0], device=ids.device)
    ids = ids.contiguous()
    group = torch.searchsorted(torch.sort(ids)[0], ids)  # same value -> same slot in [0, B)
    first = torch.full_like(pos, ids.shape[0]).scatter_reduce(0, group, pos, "amin")
    return first[group] == pos


def info_nce(a: Tensor, b: Tensor, temperature: float, ids: Tensor | None = None) -> Tensor:
    """InfoNCE between rows of two views, in-batch negatives: ``-mean_i log softmax_j(cos(a_i, b_j) / τ)[i]``.

    The form of SGL (Wu et al. 2021, eq. 9) and SimGCL (Yu et al. 2022, eq. 2) over the batch's nodes. With
    ``ids`` (the node of each row), repeated nodes count once, as anchors and as negatives (both reference
    codes contrast the batch's unique users and items), so a node is never its own negative.
    Shapes: ``a, b (B, D)``, ``ids (B,)`` -> scalar.

    Cost: one ``(B, B)`` GEMM with the temperature folded into ``a`` and the repeated columns' ``-inf`` added
    by the GEMM itself (``addmm``), then the softmax; no further pass over the ``(B, B)`` logits.
    """
    a = F.normalize(a.float(), dim=1) / temperature
    b = F.normalize(b.float(), dim=1)
    target = torch.arange(a.shape[0], device=a.device)
    if ids is None:
        return F.cross_entropy(a @ b.T, target)
    keep = first_occurrence(ids)
    return _masked_info_nce(a, b, keep)


def _masked_info_nce(a: Tensor, b: Tensor, keep: Tensor) -> Tensor:
    """InfoNCE over the rows where ``keep``, as anchors and as negatives, with fixed shapes (no host sync)."""
    column_bias = torch.zeros(keep.shape, device=a.device).masked_fill(~keep, float("-inf"))
    logits = torch.addmm(column_bias.unsqueeze(0), a, b.T)
    per_row = F.cross_entropy(logits, torch.arange(a.shape[0], device=a.device), reduction="none")
    return torch.where(keep, per_row, torch.zeros_like(per_row)).sum() / keep.sum()


def info_nce_of_ids(table_a: Tensor, table_b: Tensor, ids: Tensor, temperature: float) -> Tensor:
    """:func:`info_nce` over the distinct ``ids`` of a batch, rows taken from two ``(N, D)`` tables.

    Equals ``info_nce(table_a[ids], table_b[ids], τ, ids)``, and the reference codes' contrast of
    ``torch.unique(ids)`` (SELFRec ``XSimGCL.cal_cl_loss``). When the table has fewer rows than the batch
    (e.g. MovieLens-small's 608 users against a batch of 2,048) it contrasts the table's rows that occur in
    the batch, an ``(N, N)`` problem instead of ``(B, B)``; both choices depend only on shapes.
    Shapes: ``table_a, table_b (N, D)``, ``ids (B,)`` -> scalar.
    """
    if table_a.shape[0] >= ids.shape[0]:
        return info_nce(table_a[ids], table_b[ids], temperature, ids)
    present = torch.zeros(table_a.shape[0], dtype=torch.bool, device=ids.device).index_fill_(0, ids, True)
    a = F.normalize(table_a.float(), dim=1) / temperature
    return _masked_info_nce(a, F.normalize(table_b.float(), dim=1), present)


def l2_rows(*rows: Tensor) -> Tensor:
    """``sum ||row||^2 / (2 B)``: LightGCN's regulariser on the batch's layer-0 embeddings."""
    batch = rows[0].shape[0]
    return sum(r.float().pow(2).sum() for r in rows) / (2 * batch)


class BPRConfig(ComponentConfig):
    """``reg`` (1e-4): weight of the L2 penalty on the batch's free embeddings (LightGCN's default)."""

    reg: float = Field(1e-4, ge=0)


class BPRObjective(Objective):
    """Bayesian personalised ranking on ``encoder(main)``'s ``[user, pos, negs]`` rows, plus L2 on ego rows."""

    def __init__(self, cfg: BPRConfig):
        super().__init__()
        self.cfg = cfg

    def supervised(self, encoder: Encoder, main: dict) -> tuple[Tensor, dict[str, Tensor]]:
        bpr = bpr_loss(encoder(main).tokens)
        loss, logs = bpr, {"bpr": bpr.detach()}
        if self.cfg.reg and hasattr(encoder, "ego"):
            reg = self.cfg.reg * l2_rows(*encoder.ego(main))
            loss, logs["reg"] = loss + reg, reg.detach()
        return loss, logs

    def forward(self, encoder, views):
        loss, logs = self.supervised(encoder, views.inputs[0])
        return ObjectiveOutput(loss=loss, logs=logs)


class GraphContrastConfig(BPRConfig):
    """``ssl_weight`` λ and ``temperature`` τ of the InfoNCE term added to BPR.

    Defaults are SGL's (λ = 0.1, τ = 0.2; Wu et al. 2021, sec. 4.1); SimGCL registers λ = 0.2 (its
    Douban-Book/Yelp range 0.2-0.5), τ = 0.2 (Yu et al. 2022, sec. 4.1).
    """

    ssl_weight: float = Field(0.1, ge=0)
    temperature: float = Field(0.2, gt=0)


class SimGCLConfig(GraphContrastConfig):
    ssl_weight: float = Field(0.2, ge=0)


class GraphContrastObjective(BPRObjective):
    """BPR on the clean graph plus λ · InfoNCE between two views' user and item embeddings.

    SGL (Wu et al., SIGIR 2021, eq. 10) when the views are subgraphs (``recsys.sgl_dropout``), SimGCL
    (Yu et al., SIGIR 2022, eq. 8) when they are noise-perturbed propagations (``recsys.embedding_noise``):
    the loss is the same, only the views differ. The contrast covers the batch's users and positive items.
    """

    def forward(self, encoder, views):
        if len(views.inputs) < 3:
            raise ValueError("graph contrast needs a main input and two views (recsys.sgl_dropout or recsys.embedding_noise)")
        main = views.inputs[0]
        loss, logs = self.supervised(encoder, main)
        (ua, ia), (ub, ib) = encoder.tables(views.inputs[1]), encoder.tables(views.inputs[2])
        u, i = main["user"], main["pos"]
        ssl = info_nce_of_ids(ua, ub, u, self.cfg.temperature) + info_nce_of_ids(ia, ib, i, self.cfg.temperature)
        logs["infonce"] = ssl.detach()
        return ObjectiveOutput(loss=loss + self.cfg.ssl_weight * ssl, logs=logs)


class XSimGCLConfig(BPRConfig):
    """``ssl_weight`` λ (0.2), ``temperature`` τ (0.2), contrast ``layer`` l* (1) (Yu et al., TKDE 2023)."""

    ssl_weight: float = Field(0.2, ge=0)
    temperature: float = Field(0.2, gt=0)
    layer: int = Field(1, ge=1)


class XSimGCLObjective(BPRObjective):
    """XSimGCL: one noisy propagation; BPR on its final embeddings, InfoNCE final vs layer l*.

    Reference: Yu et al., "XSimGCL: Towards Extremely Simple Graph Contrastive Learning for Recommendation",
    TKDE 2023, eq. 5. Uses ``views.inputs[1]["noise"]`` from ``recsys.embedding_noise``.
    """

    def forward(self, encoder, views):
        main = views.inputs[0]
        layers = encoder.propagate(views.inputs[1])
        users, items = encoder.combine(layers)
        u, it = main["user"], torch.cat([main["pos"].unsqueeze(1), main["neg"]], 1)
        bpr = bpr_loss(torch.cat([users[u].unsqueeze(1), items[it]], 1))
        reg = self.cfg.reg * l2_rows(*encoder.ego(main))
        cross = layers[min(self.cfg.layer, len(layers) - 1)]
        cu, ci = cross[: encoder.num_users], cross[encoder.num_users :]
        p = main["pos"]
        ssl = info_nce_of_ids(users, cu, u, self.cfg.temperature) + info_nce_of_ids(items, ci, p, self.cfg.temperature)
        return ObjectiveOutput(loss=bpr + reg + self.cfg.ssl_weight * ssl, logs={"bpr": bpr.detach(), "reg": reg.detach(), "infonce": ssl.detach()})


class TwoTowerObjectiveConfig(ComponentConfig):
    """In-batch softmax with the item-tower SSL task.

    Fields: ``temperature`` (0.05) of the supervised softmax over cosine scores; ``logq`` (True): subtract
    ``log p(item)`` (the item's training frequency) from in-batch logits (Yi et al. 2019, eq. 3);
    ``ssl_weight`` α (0.1; 0 turns the SSL task off); ``ssl_temperature`` τ (0.1).
    """

    temperature: float = Field(0.05, gt=0)
    logq: bool = True
    ssl_weight: float = Field(0.1, ge=0)
    ssl_temperature: float = Field(0.1, gt=0)


class TwoTowerObjective(Objective):
    """In-batch softmax over positives of the batch (+ logQ) and α · SSL on feature-masked items.

    Reference: Yao et al., "Self-supervised Learning for Large-scale Item Recommendations", CIKM 2021,
    eqs. 1-4: ``L = L_main + α L_self``; ``L_self`` is InfoNCE between the item tower's outputs for two
    complementary feature maskings of the same items (``recsys.feature_masking``). Repeated positives in a
    batch are not counted as negatives of each other.
    """

    def __init__(self, log_popularity: Tensor, cfg: TwoTowerObjectiveConfig):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("log_popularity", log_popularity, persistent=False)

    def forward(self, encoder, views):
        main = views.inputs[0]
        u = encoder.user_vectors(main["user"])
        v = encoder.item_vectors(main["pos"])
        logits = u.float() @ v.float().T / self.cfg.temperature
        if self.cfg.logq:
            logits = logits - self.log_popularity[main["pos"]].unsqueeze(0)
        same = main["pos"].unsqueeze(0) == main["pos"].unsqueeze(1)
        logits = logits.masked_fill(same & ~torch.eye(same.shape[0], dtype=torch.bool, device=same.device), float("-inf"))
        sup = F.cross_entropy(logits, torch.arange(u.shape[0], device=u.device))
        logs = {"softmax": sup.detach()}
        loss = sup
        if self.cfg.ssl_weight and len(views.inputs) >= 3:
            a, b = views.inputs[1], views.inputs[2]
            ssl = info_nce(encoder.item_vectors(a["items"], a["keep"]), encoder.item_vectors(b["items"], b["keep"]), self.cfg.ssl_temperature)
            loss, logs["ssl"] = loss + self.cfg.ssl_weight * ssl, ssl.detach()
        return ObjectiveOutput(loss=loss, logs=logs)


class BM3Config(ComponentConfig):
    """BM3's losses: target ``dropout`` (0.5), ``reg_weight`` (0.1), ``cl_weight`` (2.0) of the modality terms.

    Defaults from the BM3 README (Baby: 1 layer, dropout 0.5, reg 0.1) and MMRec's ``BM3.yaml`` (cl_weight 2.0).
    """

    dropout: float = Field(0.5, ge=0, lt=1)
    reg_weight: float = Field(0.1, ge=0)
    cl_weight: float = Field(2.0, ge=0)


def _neg_cos(a: Tensor, b: Tensor) -> Tensor:
    return 1 - F.cosine_similarity(a, b.detach(), dim=-1).mean()


class BM3Objective(Objective):
    """BM3: bootstrap latent views with no negatives and no target network.

    Reference: Zhou et al., "Bootstrap Latent Representations for Multi-modal Recommendation", WWW 2023,
    sec. 3; reference code github.com/enoche/BM3 ``calculate_loss``. Targets are dropout views of the
    online embeddings (stop-gradient); the shared predictor (in :class:`BM3Encoder`) maps online user,
    item and modality embeddings. Losses: user<->item reconstruction ``(1 - cos(p(u), i~)) + (1 - cos(p(i), u~))``,
    modality-to-item alignment ``1 - cos(p(m), i~)`` and intra-modality ``1 - cos(p(m), m~)``, plus
    ``reg_weight (||U||_F + ||I||_F) / I`` on the online tables (the reference code's ``EmbLoss``). Here the item "modality" is the multi-hot of the item's categorical fields (genres,
    tags, ...), projected by a linear layer. Target dropout uses the global torch RNG like any dropout.
    """

    def __init__(self, modality: Tensor, dim: int, cfg: BM3Config):
        super().__init__()
        self.cfg = cfg
        self.modality = modality  # (I, V') on the data source's device
        self.project = nn.Linear(modality.shape[1], dim)
        nn.init.xavier_normal_(self.project.weight)

    def forward(self, encoder, views):
        main = views.inputs[0]
        u, i = main["user"], main["pos"]
        users, items = encoder.online()
        m = self.project(self.modality.to(items.device)[i])
        with torch.no_grad():
            u_t = F.dropout(users[u], self.cfg.dropout)
            i_t = F.dropout(items[i], self.cfg.dropout)
            m_t = F.dropout(m, self.cfg.dropout)
        rec = _neg_cos(encoder.predictor(users[u]), i_t) + _neg_cos(encoder.predictor(items[i]), u_t)
        p_m = encoder.predictor(m)
        align = _neg_cos(p_m, i_t) + _neg_cos(p_m, m_t)
        # the reference code's EmbLoss: Frobenius norms (not squared) of the online tables over the item count
        reg = self.cfg.reg_weight * (users.norm() + items.norm()) / items.shape[0]
        return ObjectiveOutput(loss=rec + reg + self.cfg.cl_weight * align, logs={"reconstruction": rec.detach(), "alignment": align.detach(), "reg": reg.detach()})


# ------------------------------------------------------------------------------------------------ factories
def build_bpr(cfg: BPRConfig, ctx: BuildContext) -> BPRObjective:
    return BPRObjective(cfg)


def build_graph_contrast(cfg: GraphContrastConfig, ctx: BuildContext) -> GraphContrastObjective:
    return GraphContrastObjective(cfg)


def build_xsimgcl(cfg: XSimGCLConfig, ctx: BuildContext) -> XSimGCLObjective:
    return XSimGCLObjective(cfg)


def build_two_tower_objective(cfg: TwoTowerObjectiveConfig, ctx: BuildContext) -> TwoTowerObjective:
    pop = ctx.data.popularity
    return TwoTowerObjective(torch.log((pop + 1.0) / (pop + 1.0).sum()), cfg)


def build_bm3(cfg: BM3Config, ctx: BuildContext) -> BM3Objective:
    return BM3Objective(ctx.data.item_multi_hot, ctx.encoder.dim, cfg)
