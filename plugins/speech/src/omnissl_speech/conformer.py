"""Conformer context network with exact padding (Gulati et al., "Conformer", Interspeech 2020), for w2v-BERT.

w2v-BERT (Chung et al. 2021, section 3) builds its context network from conformer blocks: half-step
feed-forward, self-attention, a convolution module (pointwise conv, GLU, depthwise conv, batch norm, SiLU,
pointwise conv), half-step feed-forward, final layer norm. The blocks are torchaudio's
``torchaudio.models.conformer.ConformerLayer``; only the convolution module's forward is replaced here,
because torchaudio's lets padding leak into valid frames in two places:

1. the depthwise convolution reads its neighbours, and a padded frame is not zero there (the pointwise
   convolution before it has a bias), so the last valid frames of a short utterance would see the padding;
   here the GLU output is zeroed at padding before the depthwise convolution, which is exactly the zero
   border a lone utterance gets;
2. ``BatchNorm1d`` in training takes its statistics over every (utterance, frame), padding included; here
   they are taken over valid frames only (:func:`masked_batch_norm`), and the module's running statistics
   are updated from those, so eval mode is as exact as training.

With those two changes a batch gives each utterance the same outputs as encoding it alone, the speech
plugin's padding guarantee (``tests/plugins/speech/test_padding.py``).

Shapes:
    ``tokens (B, T, D)``, ``padding_mask (B, T)`` (``True`` = padding) -> ``(B, T, D)`` (zero at padding),
    and with ``return_layers`` the output of every block.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchaudio.models.conformer import ConformerLayer


def masked_batch_norm(x: Tensor, valid: Tensor, norm: nn.BatchNorm1d) -> Tensor:
    """``BatchNorm1d`` whose training statistics come from valid frames only.

    Shapes:
        ``x (B, C, T)``, ``valid (B, T)`` bool -> ``(B, C, T)``.
    """
    if not norm.training:
        return norm(x)
    weight = valid[:, None, :].to(x.dtype)
    count = weight.sum().clamp_min(1.0)
    mean = (x * weight).sum(dim=(0, 2)) / count
    var = ((x - mean[None, :, None]).pow(2) * weight).sum(dim=(0, 2)) / count
    with torch.no_grad():  # the running statistics BatchNorm1d keeps (unbiased variance, as torch does)
        m = norm.momentum if norm.momentum is not None else 0.1
        norm.running_mean.lerp_(mean.detach().to(norm.running_mean.dtype), m)
        unbiased = var.detach() * count / (count - 1).clamp_min(1.0)
        norm.running_var.lerp_(unbiased.to(norm.running_var.dtype), m)
        norm.num_batches_tracked.add_(1)
    y = (x - mean[None, :, None]) / torch.sqrt(var[None, :, None] + norm.eps)
    return y * norm.weight[None, :, None] + norm.bias[None, :, None]


class PaddedConformerLayer(ConformerLayer):
    """torchaudio's conformer block with the convolution module made padding-exact (module docstring)."""

    def conv_module_forward(self, x: Tensor, padding_mask: Tensor) -> Tensor:
        """``x (B, T, D)`` -> ``(B, T, D)``: torchaudio's ``_ConvolutionModule.forward`` with masking."""
        conv = self.conv_module
        pointwise_in, glu, depthwise, norm, act, pointwise_out, dropout = conv.sequential
        y = glu(pointwise_in(conv.layer_norm(x).transpose(1, 2)))  # (B, C, T)
        y = depthwise(y.masked_fill(padding_mask[:, None, :], 0.0))
        y = masked_batch_norm(y, ~padding_mask, norm) if isinstance(norm, nn.BatchNorm1d) else norm(y)
        return dropout(pointwise_out(act(y))).transpose(1, 2)

    def forward(self, x: Tensor, padding_mask: Tensor, key_padding_mask: Tensor) -> Tensor:  # type: ignore[override]
        """``x (B, T, D)``, masks ``(B, T)`` -> ``(B, T, D)``: ConformerLayer.forward, batch-first.

        ``padding_mask`` marks padded frames for the convolution module, ``key_padding_mask`` the keys
        attention ignores (the same, except that a row with no valid frame keeps its keys).
        """
        x = x + 0.5 * self.ffn1(x)
        if self.convolution_first:
            x = x + self.conv_module_forward(x, padding_mask)
        h = self.self_attn_layer_norm(x).transpose(0, 1)
        h, _ = self.self_attn(query=h, key=h, value=h, key_padding_mask=key_padding_mask, need_weights=False)
        x = x + self.self_attn_dropout(h.transpose(0, 1))
        if not self.convolution_first:
            x = x + self.conv_module_forward(x, padding_mask)
        x = x + 0.5 * self.ffn2(x)
        return self.final_layer_norm(x)


class ConformerTrunk(nn.Module):
    """A stack of :class:`PaddedConformerLayer`, with the :class:`omnissl.nn.TransformerTrunk` call signature.

    Args:
        dim, depth, heads: width, blocks, attention heads.
        mlp_ratio: feed-forward width over ``dim`` (the conformer's ``ffn_dim = 4 dim``).
        kernel_size: depthwise convolution kernel (odd; the Conformer paper uses 32 at 40 ms frames,
            torchaudio needs odd sizes; default set by the encoder config).
        dropout: dropout in every module.

    ``keep`` (a token subset) is refused: a convolution over a gathered subset is not the same model.
    """

    def __init__(self, dim: int, depth: int, heads: int, mlp_ratio: float, kernel_size: int, dropout: float):
        super().__init__()
        if dim % heads:
            raise ValueError(f"conformer dim {dim} must be divisible by heads {heads}; change one of them")
        self.dim = self.output_dim = dim
        self.blocks = nn.ModuleList(
            PaddedConformerLayer(dim, int(dim * mlp_ratio), heads, kernel_size, dropout=dropout) for _ in range(depth)
        )

    def forward(self, tokens: Tensor, padding_mask: Tensor | None = None, keep: Tensor | None = None, return_layers: bool = False):
        if keep is not None:
            raise ValueError("the conformer context network encodes whole utterances; keep= (a token subset) is not supported")
        if padding_mask is None:
            padding_mask = torch.zeros(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        # a row with no valid frame keeps all keys so its (discarded) outputs stay finite
        attend = padding_mask & padding_mask.logical_not().any(dim=1, keepdim=True)
        layers, x = [], tokens
        for block in self.blocks:
            x = block(x, padding_mask, attend)
            if return_layers:
                layers.append(x)
        x = x.masked_fill(padding_mask.unsqueeze(-1), 0.0)
        return (x, layers) if return_layers else x


__all__ = ["ConformerTrunk", "PaddedConformerLayer", "masked_batch_norm"]
