"""View generators for interaction batches: negative sampling, SGL graph dropout, SimGCL noise, feature masking.

All randomness comes from the engine's ``generator`` (negatives too), so a step's views are a pure function
of the seed and the step. Each generator returns ``Views(inputs=[main, ...])`` where ``main`` is the
interaction batch ``{"user", "pos", "neg"?}`` for the supervised loss and further inputs are the SSL views.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from omnissl.interfaces import ViewGenerator, Views
from omnissl.specs import BuildContext, ComponentConfig

from omnissl_recsys.encoders import LightGCNConfig


def sample_negatives(users: Tensor, num_items: int, n: int, generator: torch.Generator, train_keys: Tensor | None = None, retries: int = 2) -> Tensor:
    """``(B, n)`` items drawn uniformly; draws that hit a training positive of the user are redrawn ``retries`` times.

    The redraws are a fixed number of vectorised rounds (no host synchronisation); a negative that is still a
    positive after them is kept (probability ``(|I_u| / I) ** (retries + 1)``), as in LightGCN's sampler which
    only approximately avoids positives.
    """
    shape = (users.shape[0], n)
    neg = torch.randint(num_items, shape, generator=generator, device=users.device)
    if train_keys is None or train_keys.numel() == 0:
        return neg
    for _ in range(retries):
        keys = users.unsqueeze(1) * num_items + neg
        pos = torch.searchsorted(train_keys, keys).clamp(max=train_keys.numel() - 1)
        hit = train_keys[pos] == keys
        neg = torch.where(hit, torch.randint(num_items, shape, generator=generator, device=users.device), neg)
    return neg


class NegativesConfig(ComponentConfig):
    """``num_negatives`` (1) uniform negatives per interaction; 0 for objectives without negatives (BM3)."""

    num_negatives: int = Field(1, ge=0)


class NegativeSampling(ViewGenerator):
    """One view: the interaction batch with ``neg (B, n)`` uniform negatives (BPR, Rendle et al. 2009)."""

    def __init__(self, num_items: int, train_keys: Tensor | None, cfg: NegativesConfig):
        super().__init__()
        self.num_items, self.train_keys, self.num_negatives = num_items, train_keys, cfg.num_negatives

    def main(self, batch: dict[str, Tensor], generator: torch.Generator) -> dict[str, Tensor]:
        out = {"user": batch["user"], "pos": batch["pos"]}
        if self.num_negatives:
            keys = self.train_keys.to(batch["user"].device) if self.train_keys is not None else None
            out["neg"] = sample_negatives(batch["user"], self.num_items, self.num_negatives, generator, keys)
        return out

    def forward(self, batch, generator):
        return Views(inputs=[self.main(batch, generator)], original=batch)


class GraphDropoutConfig(NegativesConfig):
    """SGL's structure views: ``kind`` ``"edge"`` (ED) or ``"node"`` (ND) dropout with ``ratio`` ρ (0.1,
    the SGL paper's default) applied independently for each of the two views.
    """

    kind: Literal["edge", "node"] = "edge"
    ratio: float = Field(0.1, ge=0, lt=1)


class GraphDropout(NegativeSampling):
    """SGL views: two subgraphs of the training graph, each with its normalised adjacency.

    Reference: Wu et al., "Self-supervised Graph Learning for Recommendation", SIGIR 2021, eqs. 4-5.
    Edge dropout keeps each training edge with probability ``1 - ρ``; node dropout removes each node
    (user or item) with probability ``ρ`` together with its edges. SGL redraws the subgraphs every epoch;
    here they are redrawn every step, from the step's generator. (Random-walk views, which redraw per layer,
    are not provided.)

    Views: ``inputs = [main, {"edge_keep": (E,)}, {"edge_keep": (E,)}]`` bool masks over the training edges;
    the encoder turns them into the subgraphs' normalised adjacencies (:meth:`BipartiteGraph.normalized`).
    """

    def __init__(self, source, cfg: GraphDropoutConfig):
        super().__init__(source.num_items, source.train_keys, cfg)
        self.num_users, self.cfg = source.num_users, cfg
        train = source.interactions["train"]
        self.edge_users, self.edge_items = train[:, 0], train[:, 1]

    def _keep(self, generator: torch.Generator, device) -> Tensor:
        if self.cfg.kind == "edge":
            return torch.rand(self.edge_users.shape[0], generator=generator, device=device) >= self.cfg.ratio
        nodes = torch.rand(self.num_users + self.num_items, generator=generator, device=device) >= self.cfg.ratio
        return nodes[self.edge_users.to(device)] & nodes[self.edge_items.to(device) + self.num_users]

    def forward(self, batch, generator):
        main = self.main(batch, generator)
        device = batch["user"].device
        views = [{"edge_keep": self._keep(generator, device)} for _ in range(2)]
        return Views(inputs=[main, *views], original=batch)


class EmbeddingNoiseConfig(NegativesConfig):
    """SimGCL's views: ``eps`` (0.1; SimGCL's default) norm of the noise added at each layer; ``num_views``
    (2 for SimGCL; XSimGCL uses the first one only).
    """

    eps: float = Field(0.1, ge=0)
    num_views: int = Field(2, ge=1)


class EmbeddingNoise(NegativeSampling):
    """SimGCL views: per layer, a random direction ``Δ = eps * normalize(U(0, 1))`` for every node.

    Reference: Yu et al., "Are Graph Augmentations Necessary? Simple Graph Contrastive Learning for
    Recommendation", SIGIR 2022, eq. 7 (the encoder adds ``sign(E) * Δ``, keeping the noise in the same
    hyperoctant as the embedding). The noise is shaped like the task's LightGCN layers ``(L, U + I, D)``;
    without an encoder in the build context, like the default :class:`LightGCNConfig`.

    Views: ``inputs = [main, {"noise": (L, N, D)}, ...]`` (``num_views`` noisy inputs).
    """

    def __init__(self, source, shape: tuple[int, int, int], cfg: EmbeddingNoiseConfig):
        super().__init__(source.num_items, source.train_keys, cfg)
        self.shape, self.cfg = shape, cfg

    def forward(self, batch, generator):
        main = self.main(batch, generator)
        device = batch["user"].device
        views = [{"noise": self.cfg.eps * F.normalize(torch.rand(self.shape, generator=generator, device=device), dim=-1)}
                 for _ in range(self.cfg.num_views)]
        return Views(inputs=[main, *views], original=batch)


class FeatureMaskingConfig(NegativesConfig):
    """Yao et al.'s item augmentations.

    Fields: ``mode`` ``"random"`` (RFM: a random half of the fields per item) or ``"correlated"`` (CFM: a
    random seed field and the fields with the highest mutual information with it, half in all);
    ``value_dropout`` (0.1) drops single values of multi-valued fields in both views; ``ssl_batch_size``
    (``None``: the training batch size) items drawn uniformly from the catalogue (the SSL items follow a
    different distribution from the popularity-skewed supervised ones, sec. 3.4); ``num_negatives`` (0:
    two-tower training uses in-batch negatives).
    """

    num_negatives: int = Field(0, ge=0)
    mode: Literal["random", "correlated"] = "correlated"
    value_dropout: float = Field(0.1, ge=0, lt=1)
    ssl_batch_size: int | None = Field(None, gt=1)


class FeatureMasking(NegativeSampling):
    """Two complementary feature-masked views of uniformly drawn items (Yao et al., CIKM 2021, sec. 3.2-3.4).

    View ``a`` masks a set ``S`` of half of the fields, view ``b`` its complement; both also drop single
    values of multi-valued fields with ``value_dropout``. For CFM, ``S`` for seed field ``f`` is ``f`` and
    the ``F/2 - 1`` fields with the highest mutual information with ``f`` (precomputed once from the
    item features, :meth:`ItemFeatures.field_mutual_information`).

    Views: ``inputs = [main, {"items": (S,), "keep": (S, T)}, {"items": (S,), "keep": (S, T)}]``.
    """

    def __init__(self, source, cfg: FeatureMaskingConfig):
        super().__init__(source.num_items, source.train_keys, cfg)
        self.cfg = cfg
        features = source.features
        self.slot_field = features.slot_field
        self.num_fields = features.num_fields
        self.half = max(1, self.num_fields // 2)
        if cfg.mode == "correlated":
            mi = features.field_mutual_information().clone()
            mi.fill_diagonal_(float("inf"))  # the seed is always in its own set
            top = mi.topk(self.half, dim=1).indices
            sets = torch.zeros(self.num_fields, self.num_fields, dtype=torch.bool).scatter_(1, top, True)
            self.register_buffer("seed_sets", sets, persistent=False)  # moves with the model, never saved

    def _masked_fields(self, n: int, generator, device) -> Tensor:
        if self.cfg.mode == "correlated":
            seed = torch.randint(self.num_fields, (n,), generator=generator, device=device)
            return self.seed_sets[seed]
        ranks = torch.rand(n, self.num_fields, generator=generator, device=device).argsort(dim=1).argsort(dim=1)
        return ranks < self.half

    def forward(self, batch, generator):
        main = self.main(batch, generator)
        device = batch["user"].device
        n = self.cfg.ssl_batch_size or batch["user"].shape[0]
        items = torch.randint(self.num_items, (n,), generator=generator, device=device)
        masked = self._masked_fields(n, generator, device)[:, self.slot_field.to(device)]  # (n, T)
        slots = masked.shape[1]
        keep_a = ~masked & (torch.rand(n, slots, generator=generator, device=device) >= self.cfg.value_dropout)
        keep_b = masked & (torch.rand(n, slots, generator=generator, device=device) >= self.cfg.value_dropout)
        return Views(inputs=[main, {"items": items, "keep": keep_a}, {"items": items, "keep": keep_b}], original=batch)


# ------------------------------------------------------------------------------------------------ factories
def build_negatives(cfg: NegativesConfig, ctx: BuildContext) -> NegativeSampling:
    return NegativeSampling(ctx.data.num_items, ctx.data.train_keys, cfg)


def build_graph_dropout(cfg: GraphDropoutConfig, ctx: BuildContext) -> GraphDropout:
    return GraphDropout(ctx.data, cfg)


def build_embedding_noise(cfg: EmbeddingNoiseConfig, ctx: BuildContext) -> EmbeddingNoise:
    enc = ctx.encoder
    default = LightGCNConfig()
    layers = getattr(enc, "num_layers", default.num_layers)
    dim = getattr(enc, "dim", default.dim)
    return EmbeddingNoise(ctx.data, (layers, ctx.data.num_users + ctx.data.num_items, dim), cfg)


def build_feature_masking(cfg: FeatureMaskingConfig, ctx: BuildContext) -> FeatureMasking:
    return FeatureMasking(ctx.data, cfg)
