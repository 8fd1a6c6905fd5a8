"""VideoMAE's lightweight decoder and its normalised-pixel target, shared by the three objectives.

Reference: Tong et al., "VideoMAE: Masked Autoencoders are Data-Efficient Learners for Self-Supervised
Video Pre-Training", NeurIPS 2022; official code github.com/MCG-NJU/VideoMAE ``modeling_pretrain.py``
(``PretrainVisionTransformer.forward``) and ``engine_for_pretraining.py`` (the target).
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor, nn

from omnissl.nn import TransformerTrunk, TrunkConfig, gather_tokens, sincos_positions
from omnissl_video.encoders import xavier_init


def normalized_patch_targets(clips: Tensor, tubelet: int, patch: int, normalize: bool = True, eps: float = 1e-6) -> Tensor:
    """VideoMAE's reconstruction target for every tube.

    Each tube's pixels are standardised per channel over the tube's ``tubelet * patch * patch`` pixels
    with the *unbiased* variance and ``eps`` added to the standard deviation (not the variance), exactly
    as ``engine_for_pretraining.py``; ``normalize=False`` gives the raw pixels. The standardisation makes
    the target invariant to the input's per-channel affine normalisation (ImageNet mean/std), so it does
    not matter whether clips arrive normalised.

    Shapes:
        ``(B, C, T, H, W)`` -> ``(B, N, tubelet * patch * patch * C)`` in ``(pt ph pw c)`` order.
    """
    tubes = rearrange(clips.float(), "b c (t pt) (h ph) (w pw) -> b (t h w) (pt ph pw) c", pt=tubelet, ph=patch, pw=patch)
    if normalize:
        tubes = (tubes - tubes.mean(dim=-2, keepdim=True)) / (tubes.var(dim=-2, unbiased=True, keepdim=True).sqrt() + eps)
    return rearrange(tubes, "b n p c -> b n (p c)")


class MAEDecoder(nn.Module):
    """VideoMAE's decoder: visible tokens and [MASK] tokens with sin-cos positions, a trunk, a linear head.

    ``encoder_to_decoder`` (bias-free) maps encoder tokens to ``dim``; each visible token and each
    [MASK] token gets the decoder's fixed sin-cos position of its tube; the sequence is
    ``[visible..., masked...]`` (the official code shuffles positions instead of un-shuffling tokens); the
    head reads the masked rows after the trunk's final LayerNorm.

    Args:
        encoder_dim: width of the encoder tokens. out_dim: prediction width per masked tube.
        num_tokens: tubes per clip (positions table size). dim, depth, heads: the decoder trunk (VideoMAE:
            half the encoder width, 4 blocks).

    Shapes:
        ``forward(tokens (B, K, E), keep (B, K), masked (B, M))`` -> ``(B, M, out_dim)``.
    """

    def __init__(self, encoder_dim: int, out_dim: int, num_tokens: int, dim: int = 192, depth: int = 4, heads: int = 3, mlp_ratio: float = 4.0):
        super().__init__()
        self.encoder_to_decoder = nn.Linear(encoder_dim, dim, bias=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.trunk = TransformerTrunk(TrunkConfig(dim=dim, depth=depth, heads=heads, mlp_ratio=mlp_ratio))
        self.head = nn.Linear(dim, out_dim)
        self.register_buffer("position_table", sincos_positions(num_tokens, dim), persistent=False)
        xavier_init(self)
        nn.init.trunc_normal_(self.mask_token, std=0.02, a=-0.02, b=0.02)  # timm trunc_normal_(std=.02) as VideoMAE calls it

    def positions(self, num_tokens: int, device: torch.device) -> Tensor:
        if num_tokens <= self.position_table.shape[0]:
            return self.position_table[:num_tokens]
        return sincos_positions(num_tokens, self.position_table.shape[1], device=device)

    def forward(self, tokens: Tensor, keep: Tensor, masked: Tensor) -> Tensor:
        x = self.encoder_to_decoder(tokens)
        b = x.shape[0]
        table = self.positions(int(keep.shape[1] + masked.shape[1]), x.device).to(x.dtype).expand(b, -1, -1)
        visible = x + gather_tokens(table, keep)
        hidden = self.mask_token.to(x.dtype) + gather_tokens(table, masked)
        out = self.trunk(torch.cat([visible, hidden], dim=1))
        return self.head(out[:, -masked.shape[1] :])
