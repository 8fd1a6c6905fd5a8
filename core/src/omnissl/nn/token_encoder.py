"""A transformer encoder over pre-tokenised features: ``(B, N, F)`` float tokens, one linear stem, the core trunk.

For data that already comes as token features (patch pixels, precomputed frame or patch embeddings, sensor
windows) and for the core's masked objectives' contract tests. Linear patch embedding plus fixed 1-D sin-cos
positions, as ViT/MAE's stem after patchify; ``keep`` encodes only the kept tokens (MAE, JEPA); ``pooled`` is
the mean token; :meth:`reconstruction_targets` returns the input tokens (MAE's pixel targets).
"""

from __future__ import annotations

from pydantic import Field
from torch import Tensor, nn

from omnissl.interfaces import Encoded, Encoder
from omnissl.nn.positions import sincos_positions
from omnissl.nn.trunk import TransformerTrunk, TrunkConfig
from omnissl.specs import BuildContext, ComponentConfig


class TokenTransformerConfig(ComponentConfig):
    """``dim`` (64), ``depth`` (2), ``heads`` (4), ``mlp_ratio`` (4.0) of the trunk; ``token_dim`` (None: read
    from the task's data, the last axis of a ``(N, T, F)`` tensor)."""

    dim: int = Field(64, gt=0)
    depth: int = Field(2, ge=0)
    heads: int = Field(4, gt=0)
    mlp_ratio: float = Field(4.0, gt=0)
    token_dim: int | None = Field(None, gt=0)


class TokenTransformer(Encoder):
    """``(B, N, F)`` -> ``Encoded(pooled (B, D), tokens (B, N or K, D))``."""

    def __init__(self, token_dim: int, cfg: TokenTransformerConfig):
        super().__init__()
        if cfg.dim % 2:
            raise ValueError(f"core.token_transformer needs an even dim for sin-cos positions, got {cfg.dim}")
        self.stem = nn.Linear(token_dim, cfg.dim)
        self.trunk = TransformerTrunk(TrunkConfig(dim=cfg.dim, depth=cfg.depth, heads=cfg.heads, mlp_ratio=cfg.mlp_ratio))
        self.output_dim = cfg.dim
        self.token_dim = token_dim

    def forward(self, batch: Tensor, keep: Tensor | None = None) -> Encoded:
        if batch.dim() != 3 or batch.shape[-1] != self.token_dim:
            raise ValueError(f"core.token_transformer expects (B, N, {self.token_dim}) tokens, got {tuple(batch.shape)}")
        x = self.stem(batch) + sincos_positions(batch.shape[1], self.output_dim, device=batch.device).to(batch.dtype)
        tokens = self.trunk(x, keep=keep)
        return Encoded(pooled=tokens.mean(dim=1), tokens=tokens)

    def reconstruction_targets(self, batch: Tensor) -> Tensor:
        return batch


def token_transformer(cfg: TokenTransformerConfig, ctx: BuildContext) -> TokenTransformer:
    token_dim = cfg.token_dim
    if token_dim is None:
        data = getattr(ctx.data, "data", None)
        if not isinstance(data, Tensor) or data.dim() != 3:
            raise ValueError("core.token_transformer: set token_dim, or train on data of (num_samples, tokens, features)")
        token_dim = int(data.shape[-1])
    return TokenTransformer(token_dim, cfg)
