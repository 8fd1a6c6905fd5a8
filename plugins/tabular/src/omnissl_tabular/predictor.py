"""T-JEPA's transformer predictor (I-JEPA style): context tokens + mask tokens at the target positions.

Reference: github.com/jose-melo/t-jepa ``src/predictors.py`` (``TransformerPredictor``), itself after
I-JEPA's ``VisionTransformerPredictor`` (Assran et al., CVPR 2023). Context tokens are projected to the
predictor width and get fixed sin-cos position embeddings; one learned mask token plus the position
embedding of each target feature forms the queries; a transformer runs over ``[context, queries]`` once
per target set and the query outputs are projected back to the encoder width.

Shapes:
    context ``(B, N_c, D)``, context_positions ``(B, N_c)``, target_positions ``(B, M, K_t)`` (token
    positions, i.e. already offset by the [REG] tokens) -> ``(B, M, K_t, D)``.
"""

from __future__ import annotations

import torch
from einops import rearrange, repeat
from torch import Tensor, nn

from omnissl.nn import TransformerTrunk, TrunkConfig, sincos_positions


class TJEPAPredictor(nn.Module):
    def __init__(self, encoder_dim: int, num_tokens: int, dim: int, depth: int, heads: int, mlp_ratio: float, dropout: float = 0.0):
        super().__init__()
        self.embed = nn.Linear(encoder_dim, dim)
        self.register_buffer("positions", sincos_positions(num_tokens, dim), persistent=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.trunk = TransformerTrunk(TrunkConfig(dim=dim, depth=depth, heads=heads, mlp_ratio=mlp_ratio, dropout=dropout))
        self.project = nn.Linear(dim, encoder_dim)
        # I-JEPA / T-JEPA initialisation: truncated normal (std 0.02) for linear layers and the mask token
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    def forward(self, context: Tensor, context_positions: Tensor, target_positions: Tensor) -> Tensor:
        m, k_t = target_positions.shape[1], target_positions.shape[2]
        x = self.embed(context) + self.positions[context_positions]
        x = repeat(x, "b n d -> (b m) n d", m=m)
        queries = self.mask_token + self.positions[rearrange(target_positions, "b m k -> (b m) k")]
        out = self.trunk(torch.cat([x, queries], dim=1))[:, -k_t:]
        return rearrange(self.project(out), "(b m) k d -> b m k d", m=m)
