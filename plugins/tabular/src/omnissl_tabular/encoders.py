"""``tabular.transformer``: feature tokenizer + [REG] tokens + the core transformer trunk.

References: the feature tokenizer of FT-Transformer (Gorishniy et al., NeurIPS 2021) as used by T-JEPA
(Thimonier et al., ICLR 2025; code github.com/jose-melo/t-jepa ``src/encoder.py``): a numerical feature
``x_j`` becomes ``x_j * W_j + b_j``, a categorical feature its row of a per-feature embedding table plus
``b_j``; learned regularisation tokens [REG] go in front; an optional feature-type embedding (numerical vs
categorical) and fixed sin-cos positions are added; then :class:`omnissl.nn.TransformerTrunk`.

With a shared trunk of another width (``trunk: "@shared.<name>"`` in a cross-domain run), a linear projection
takes the tokenizer's ``dim`` to the trunk's width, as the speech, video, medical and graph token encoders
bring their stems to the trunk; the positions are added at the trunk's width. When the widths match the
projection is the identity, so single-domain checkpoints are unchanged.

``keep`` ``(B, K)`` selects *feature* indices in ``[0, F)``; the [REG] tokens are always kept and the
indices are offset by their number, so a mask can never select a [REG] position.

Shapes:
    batch ``{"num": (B, F_num), "cat": (B, F_cat)}``, ``keep`` ``(B, K)`` ->
    ``Encoded(pooled (B, D), tokens (B, R + K or R + F, D))`` with ``D`` the trunk's width; token order:
    [REG] * R, numerical, categorical.
"""

from __future__ import annotations

import math

import torch
from einops import rearrange, repeat
from pydantic import Field
from torch import Tensor, nn

from omnissl.errors import ConfigError
from omnissl.interfaces import Encoded, Encoder
from omnissl.nn import TransformerTrunk, TrunkConfig, sincos_positions
from omnissl.specs import BuildContext, ComponentConfig
from omnissl_tabular.schema import TableSchema


class FeatureTokenizer(nn.Module):
    """One token per feature plus ``num_reg_tokens`` learned [REG] tokens in front.

    Shapes:
        ``num (B, F_num)``, ``cat (B, F_cat)`` -> ``(B, R + F_num + F_cat, D)``.
    """

    def __init__(self, num_numeric: int, cardinalities: list[int], dim: int, num_reg_tokens: int, feature_type_embedding: bool):
        super().__init__()
        self.num_numeric, self.num_categorical = num_numeric, len(cardinalities)
        self.reg = nn.Parameter(torch.empty(num_reg_tokens, dim))
        self.num_weight = nn.Parameter(torch.empty(num_numeric, dim))
        self.bias = nn.Parameter(torch.empty(num_numeric + len(cardinalities), dim))
        self.cat_embedding = nn.Embedding(sum(cardinalities), dim) if cardinalities else None
        self.register_buffer("cat_offsets", torch.tensor([0, *cardinalities[:-1]], dtype=torch.long).cumsum(0), persistent=False)
        types = torch.tensor([0] * num_numeric + [1] * len(cardinalities), dtype=torch.long)
        self.register_buffer("feature_types", types, persistent=False)
        self.type_embedding = nn.Embedding(2, dim) if feature_type_embedding else None
        # the T-JEPA / FT-Transformer initialisation (nn.Linear's default)
        for p in (self.reg, self.num_weight, self.bias):
            nn.init.kaiming_uniform_(p, a=math.sqrt(5))
        if self.cat_embedding is not None:
            nn.init.kaiming_uniform_(self.cat_embedding.weight, a=math.sqrt(5))

    def forward(self, num: Tensor, cat: Tensor) -> Tensor:
        parts = []
        if self.num_numeric:
            parts.append(rearrange(num, "b f -> b f 1") * self.num_weight)
        if self.num_categorical:
            parts.append(self.cat_embedding(cat + self.cat_offsets))
        features = torch.cat(parts, dim=1) + self.bias
        if self.type_embedding is not None:
            features = features + self.type_embedding(self.feature_types)
        reg = repeat(self.reg, "r d -> b r d", b=features.shape[0])
        return torch.cat([reg, features], dim=1)


class TabularTransformerConfig(ComponentConfig):
    """``tabular.transformer`` settings.

    Attributes:
        dim: the tokenizer's width (default 64, the T-JEPA release's ``model_dim_hidden``); with a shared trunk of
            another width the tokens are projected to the trunk's width.
        depth: trunk blocks (default 2; the release tunes 1-16 per dataset).
        heads: attention heads (default 4).
        mlp_ratio: feed-forward width over ``dim`` (default 1.0: the release uses ``dim_feedforward = 64``).
        dropout: trunk dropout (default 0.0).
        num_reg_tokens: learned [REG] tokens in front of the features (default 1, the release's ``n_cls_tokens``).
        feature_type_embedding: add a learned numerical-vs-categorical embedding (default False).
        positions: add fixed sin-cos position embeddings to the tokens, as the release's encoder does (default True).
        trunk: ``"@shared.<name>"`` to use a shared trunk from the run's ``shared:`` block instead of a new one.
    """

    dim: int = Field(64, gt=0)
    depth: int = Field(2, ge=0)
    heads: int = Field(4, gt=0)
    mlp_ratio: float = Field(1.0, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)
    num_reg_tokens: int = Field(1, ge=1)
    feature_type_embedding: bool = False
    positions: bool = True
    trunk: str | None = None


class TabularTransformer(Encoder):
    """Feature tokenizer, [REG] tokens and a transformer trunk (see the module docstring).

    ``pooled`` is the mean of the output tokens. :meth:`representation_encoder` returns the module whose
    outputs downstream probes should use: the EMA target encoder once a T-JEPA objective attached one.
    """

    def __init__(self, schema: TableSchema, cfg: TabularTransformerConfig, trunk: nn.Module | None = None):
        super().__init__()
        self.schema_features = schema.num_features
        self.num_reg_tokens = cfg.num_reg_tokens
        self.num_tokens = cfg.num_reg_tokens + schema.num_features
        self.tokenizer = FeatureTokenizer(len(schema.numeric), schema.cardinalities, cfg.dim, cfg.num_reg_tokens, cfg.feature_type_embedding)
        self.trunk = trunk if trunk is not None else TransformerTrunk(TrunkConfig(dim=cfg.dim, depth=cfg.depth, heads=cfg.heads, mlp_ratio=cfg.mlp_ratio, dropout=cfg.dropout))
        width = self.trunk.dim
        self.project = nn.Linear(cfg.dim, width) if width != cfg.dim else nn.Identity()
        self.register_buffer("positions", sincos_positions(self.num_tokens, width) if cfg.positions else torch.zeros(self.num_tokens, width), persistent=False)
        self.output_dim = width
        self._target: list[nn.Module] = []  # not a submodule: the objective owns (and checkpoints) the teacher
        # the fitted schema as UTF-8 bytes in a buffer: checkpoints and safetensors exports carry the preprocessing
        self.register_buffer("schema_json", torch.frombuffer(bytearray(schema.to_json().encode()), dtype=torch.uint8).clone())

    def schema(self) -> TableSchema:
        """The table schema (types, medians, scaling, categories) this encoder was built and trained with."""
        return TableSchema.from_json(bytes(self.schema_json.cpu().tolist()).decode())

    def forward(self, batch: dict[str, Tensor], keep: Tensor | None = None) -> Encoded:
        tokens = self.project(self.tokenizer(batch["num"], batch["cat"])) + self.positions
        if keep is not None:
            reg = torch.arange(self.num_reg_tokens, device=keep.device)
            keep = torch.cat([repeat(reg, "r -> b r", b=keep.shape[0]), keep + self.num_reg_tokens], dim=1)
        out = self.trunk(tokens, keep=keep)
        return Encoded(pooled=out.mean(dim=1), tokens=out)

    def attach_target(self, target: nn.Module) -> None:
        """Record the EMA target encoder that downstream probes should read (T-JEPA's representation)."""
        self._target[:] = [target]

    def representation_encoder(self) -> nn.Module:
        return self._target[0] if self._target else self

    def probe_features(self, batch: dict[str, Tensor], representation: str = "flatten", use_target: bool = True) -> Tensor:
        """The representation downstream probes read, and the one collapse monitors should read.

        ``flatten``: every output token of the representation encoder (the EMA target encoder once T-JEPA
        attached one, unless ``use_target`` is false) concatenated, ``(B, (R + F) * D)``, the T-JEPA
        paper's protocol; ``pooled``: the mean token ``(B, D)``. ``tabular.probe`` calls this, and
        ``omnissl.evaluation.monitors.monitored_representation`` finds it, so probe and monitor read one
        representation.
        """
        encoder = self.representation_encoder() if use_target else self
        out = encoder(batch)
        return out.tokens.flatten(1) if representation == "flatten" else out.pooled


def build_tabular_transformer(cfg: TabularTransformerConfig, ctx: BuildContext) -> TabularTransformer:
    schema = getattr(ctx.data, "schema", None)
    if not isinstance(schema, TableSchema):
        raise ConfigError(["encoder: tabular.transformer needs a tabular data source (tabular.csv or tabular.sklearn) in the same task"])
    try:
        trunk = ctx.resolve_shared(cfg.trunk) if cfg.trunk else None
    except KeyError:
        raise ConfigError([f"encoder.trunk: {cfg.trunk!r} names no module of the run's shared: block ({sorted(ctx.shared)})"]) from None
    if cfg.trunk and not isinstance(trunk, nn.Module):
        raise ConfigError([f"encoder.trunk: {cfg.trunk!r} is not a shared module reference like '@shared.trunk'"])
    if isinstance(trunk, Encoder) and hasattr(trunk, "trunk"):
        trunk = trunk.trunk
    return TabularTransformer(schema, cfg, trunk)
