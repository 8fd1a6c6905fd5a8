"""Pre-norm transformer trunk on ``scaled_dot_product_attention`` with token subsets and padding masks.

Every token-based encoder is a modality stem followed by this trunk, so a cross-domain run can share one
trunk instance between domains (``shared:`` in a run config, referenced as ``"@shared.<name>"``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from pydantic import Field
from torch import Tensor, nn

from omnissl.specs import ComponentConfig


class TrunkConfig(ComponentConfig):
    """Transformer trunk settings.

    Attributes:
        dim: token width (default 128).
        depth: number of blocks (default 4).
        heads: attention heads; must divide ``dim`` (default 4).
        mlp_ratio: hidden width of the feed-forward layer over ``dim`` (default 4.0).
        dropout: dropout on attention weights and residual branches (default 0.0).
    """

    dim: int = Field(128, gt=0)
    depth: int = Field(4, ge=0)
    heads: int = Field(4, gt=0)
    mlp_ratio: float = Field(4.0, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)


def gather_tokens(x: Tensor, index: Tensor) -> Tensor:
    """Select tokens per sample: ``x`` ``(B, N, D)``, ``index`` ``(B, K)`` long -> ``(B, K, D)``."""
    return torch.gather(x, 1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        if dim % heads:
            raise ValueError(f"trunk dim {dim} must be divisible by heads {heads}; change one of them")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = dropout

    def forward(self, x: Tensor, attn_mask: Tensor | None) -> Tensor:
        q, k, v = rearrange(self.qkv(x), "b n (three h d) -> three b h n d", three=3, h=self.heads)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0)
        return self.out(rearrange(y, "b h n d -> b n (h d)"))


class Block(nn.Module):
    def __init__(self, cfg: TrunkConfig):
        super().__init__()
        hidden = int(cfg.dim * cfg.mlp_ratio)
        self.norm1 = nn.LayerNorm(cfg.dim)
        self.attn = Attention(cfg.dim, cfg.heads, cfg.dropout)
        self.norm2 = nn.LayerNorm(cfg.dim)
        self.mlp = nn.Sequential(nn.Linear(cfg.dim, hidden), nn.GELU(), nn.Linear(hidden, cfg.dim))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, attn_mask: Tensor | None) -> Tensor:
        x = x + self.drop(self.attn(self.norm1(x), attn_mask))
        return x + self.drop(self.mlp(self.norm2(x)))


class TransformerTrunk(nn.Module):
    """Stack of pre-norm blocks with a final LayerNorm.

    ``forward(tokens, padding_mask=None, keep=None, return_layers=False)``:
    ``keep`` ``(B, K)`` selects the tokens to process (MAE/JEPA context); ``padding_mask`` ``(B, N)`` is
    ``True`` at padding and is gathered with ``keep``. Padded keys are excluded from attention, and padded
    query rows are zeroed at the output so nothing downstream can read them.

    Shapes:
        tokens ``(B, N, D)`` -> ``(B, K or N, D)``; with ``return_layers`` also a list of ``depth`` such tensors.
    """

    def __init__(self, cfg: TrunkConfig | None = None, **overrides):
        super().__init__()
        cfg = (cfg or TrunkConfig()).model_copy(update=overrides) if overrides else (cfg or TrunkConfig())
        self.config = cfg
        self.dim = cfg.dim
        self.output_dim = cfg.dim
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.dim)

    def forward(
        self,
        tokens: Tensor,
        padding_mask: Tensor | None = None,
        keep: Tensor | None = None,
        return_layers: bool = False,
    ) -> Tensor | tuple[Tensor, list[Tensor]]:
        if keep is not None:
            tokens = gather_tokens(tokens, keep)
            if padding_mask is not None:
                padding_mask = torch.gather(padding_mask, 1, keep)
        attn_mask = None
        if padding_mask is not None:
            valid = ~padding_mask
            # a sample with no valid token keeps all keys so its (discarded) rows stay finite
            valid = valid | ~valid.any(dim=1, keepdim=True)
            attn_mask = rearrange(valid, "b n -> b 1 1 n")
        layers = []
        x = tokens
        for block in self.blocks:
            x = block(x, attn_mask)
            if return_layers:
                layers.append(x)
        x = self.norm(x)
        if padding_mask is not None:
            x = x.masked_fill(padding_mask.unsqueeze(-1), 0.0)
        return (x, layers) if return_layers else x


def masked_mean(tokens: Tensor, padding_mask: Tensor | None) -> Tensor:
    """Mean over non-padded tokens: ``(B, N, D)``, ``(B, N)`` -> ``(B, D)``."""
    if padding_mask is None:
        return tokens.mean(dim=1)
    valid = (~padding_mask).unsqueeze(-1).to(tokens.dtype)
    return (tokens * valid).sum(dim=1) / valid.sum(dim=1).clamp_min(1.0)
