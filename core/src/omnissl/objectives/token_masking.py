"""Generic token masking for JEPA-style objectives: disjoint random context and target token sets.

Reference: the context/target split of I-JEPA (Assran et al., CVPR 2023) and T-JEPA (Thimonier et al.,
ICLR 2025) without the modality-specific block shapes: each sample gets a random permutation of its
``N`` tokens; the first ``round(target_ratio * N)`` are targets, the next ``round(context_ratio * N)`` the
context. Domains with structured masks (blocks, tubes, spans) write their own generator with the same
``info`` keys.

``Views.info``: ``context_idx`` ``(B, Kc)`` and ``target_idx`` ``(B, Kt)`` long tensors, each sorted.
``Views.inputs`` is ``[batch]`` and ``Views.original`` the same batch (the target encoder sees it all).
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field, model_validator
from torch import Tensor

from omnissl.interfaces import ViewGenerator, Views
from omnissl.specs import BuildContext, ComponentConfig


class TokenMaskingConfig(ComponentConfig):
    """``context_ratio`` (0.5) and ``target_ratio`` (0.4) of the ``N`` tokens (disjoint, sum <= 1);
    ``num_tokens`` (None: read ``batch.shape[1]``, the first tensor of a dict, or ``batch.num_tokens``)."""

    context_ratio: float = Field(0.5, gt=0, lt=1)
    target_ratio: float = Field(0.4, gt=0, lt=1)
    num_tokens: int | None = Field(None, ge=2)

    @model_validator(mode="after")
    def _disjoint(self) -> TokenMaskingConfig:
        if self.context_ratio + self.target_ratio > 1:
            raise ValueError(
                f"context_ratio + target_ratio must be <= 1 so the sets are disjoint, got {self.context_ratio} + {self.target_ratio}"
            )
        return self


def _batch_shape(batch: Any) -> tuple[int, int | None, torch.device]:
    if isinstance(batch, Tensor):
        return batch.shape[0], (batch.shape[1] if batch.dim() > 1 else None), batch.device
    if isinstance(batch, dict):
        first = next(v for v in batch.values() if isinstance(v, Tensor))
        return first.shape[0], (first.shape[1] if first.dim() > 1 else None), first.device
    tokens = getattr(batch, "num_tokens", None)
    size = len(batch) if hasattr(batch, "__len__") else None
    device = getattr(batch, "device", torch.device("cpu"))
    if size is None:
        raise ValueError(f"core.token_masking cannot tell the batch size of a {type(batch).__name__}; use a domain masking generator")
    return size, tokens, device


class TokenMasking(ViewGenerator):
    """Random disjoint context / target token indices, batched on the device."""

    def __init__(self, cfg: TokenMaskingConfig):
        super().__init__()
        self.cfg = cfg

    def forward(self, batch: Any, generator: torch.Generator) -> Views:
        size, tokens, device = _batch_shape(batch)
        n = self.cfg.num_tokens or tokens
        if not n or n < 2:
            raise ValueError(
                "core.token_masking could not find the number of tokens in the batch; set num_tokens in its config"
            )
        k_t = max(1, round(self.cfg.target_ratio * n))
        k_c = max(1, min(n - k_t, round(self.cfg.context_ratio * n)))
        order = torch.rand(size, n, generator=generator, device=device).argsort(dim=1)
        target_idx = order[:, :k_t].sort(dim=1).values
        context_idx = order[:, k_t : k_t + k_c].sort(dim=1).values
        return Views(inputs=[batch], original=batch, info={"context_idx": context_idx, "target_idx": target_idx})

    @classmethod
    def build(cls, cfg: TokenMaskingConfig, ctx: BuildContext) -> TokenMasking:
        return cls(cfg)
