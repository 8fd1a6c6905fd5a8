"""Gumbel-softmax product quantizer with the codebook diversity loss (wav2vec 2.0, section 2 and 3.2).

Reference: Baevski et al., "wav2vec 2.0", NeurIPS 2020; fairseq ``GumbelVectorQuantizer``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


@dataclass
class Quantized:
    """Quantizer output.

    Attributes:
        vectors: ``(B, T, code_dim)`` quantized vectors (straight-through in training).
        codes: ``(B, T, G)`` long: the chosen entry of each group (w2v-BERT's MLM targets).
        diversity_loss: ``(G V - perplexity) / (G V)``, perplexity of the batch-averaged softmax over
            valid frames, summed over groups; 0 when every code is used equally.
        perplexity: ``exp(entropy)`` summed over groups (detached), for logging code usage.
    """

    vectors: Tensor
    codes: Tensor
    diversity_loss: Tensor
    perplexity: Tensor


class GumbelProductQuantizer(nn.Module):
    """``G`` codebooks of ``V`` entries; each frame picks one entry per group with a hard Gumbel softmax.

    Args:
        in_dim: input width.
        groups: ``G`` codebooks (default 2, as wav2vec 2.0).
        entries: ``V`` entries per codebook (default 320).
        code_dim: width of the concatenated quantized vector; each entry is ``code_dim / G`` wide.

    The temperature ``tau`` is set by the owning objective (annealed from 2 to 0.5 in the paper); it is a
    buffer, so checkpoints carry it and a resumed run continues the anneal. In eval mode the argmax entry is
    used without noise.

    Shapes:
        ``x (B, T, in_dim)``, ``valid (B, T)`` bool -> :class:`Quantized`.
    """

    def __init__(self, in_dim: int, groups: int = 2, entries: int = 320, code_dim: int = 256):
        super().__init__()
        if code_dim % groups:
            raise ValueError(f"quantizer code_dim {code_dim} must be divisible by groups {groups}")
        self.groups, self.entries = groups, entries
        self.to_logits = nn.Linear(in_dim, groups * entries)
        nn.init.normal_(self.to_logits.weight, std=1.0)  # fairseq: weight_proj ~ N(0, 1), zero bias
        nn.init.zeros_(self.to_logits.bias)
        self.codebook = nn.Parameter(torch.rand(groups, entries, code_dim // groups))  # fairseq: uniform init
        self.register_buffer("tau", torch.tensor(2.0))

    def anneal(self, step: int, start: float, end: float, decay: float) -> None:
        """Set ``tau = max(start * decay**step, end)`` (wav2vec 2.0's schedule), in place on the buffer."""
        self.tau.fill_(max(start * decay**step, end))

    def forward(self, x: Tensor, valid: Tensor | None = None) -> Quantized:
        logits = rearrange(self.to_logits(x).float(), "b t (g v) -> b t g v", g=self.groups)
        codes = logits.argmax(dim=-1)
        if self.training:
            one_hot = F.gumbel_softmax(logits, tau=self.tau, hard=True, dim=-1)
        else:
            one_hot = F.one_hot(codes, self.entries).to(logits.dtype)
        vectors = torch.einsum("btgv,gvd->btgd", one_hot, self.codebook.float())
        vectors = rearrange(vectors, "b t g d -> b t (g d)").to(x.dtype)

        probs = logits.softmax(dim=-1)
        weight = torch.ones(probs.shape[:2], device=x.device) if valid is None else valid.float()
        avg = (probs * weight[..., None, None]).sum(dim=(0, 1)) / weight.sum().clamp_min(1.0)  # (G, V)
        perplexity = torch.exp(-(avg * torch.log(avg + 1e-7)).sum(dim=-1)).sum()
        total = self.groups * self.entries
        return Quantized(vectors=vectors, codes=codes, diversity_loss=(total - perplexity) / total, perplexity=perplexity.detach())
