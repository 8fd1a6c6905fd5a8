"""I-JEPA multi-block masking as a view generator, for token grids of 1, 2 or 3 axes.

Reference: Assran et al. (I-JEPA), CVPR 2023, section 3; see :func:`omnissl.nn.masking.multi_block_masks` for
the block shapes, the fixed context size and every departure from the reference collator. Feeds ``core.jepa``
(context and per-block targets) and ``core.mae`` (the encoder sees the context; every other token is
reconstructed). Domain plugins with their own grids (video tubes, volumes) call the function directly.

``Views.info``: ``context_idx`` ``(B, Kc)``, ``target_idx`` ``(B, M * Kb)``, ``target_blocks`` ``(B, M, Kb)``,
``target_mask`` ``(B, N)``, ``grid``. ``Views.inputs`` is ``[batch]`` and ``Views.original`` the same batch.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from pydantic import Field, model_validator

from omnissl.interfaces import ViewGenerator, Views
from omnissl.nn.masking import multi_block_masks
from omnissl.objectives.token_masking import _batch_shape
from omnissl.specs import BuildContext, ComponentConfig


class BlockMaskingConfig(ComponentConfig):
    """I-JEPA's multi-block masks.

    Attributes:
        grid: the token grid, 1 to 3 axis sizes, row-major (None: one axis of ``batch.shape[1]`` tokens, the
            first tensor of a dict, or ``batch.num_tokens``; set it for images ``[H, W]``, clips ``[T, H, W]``).
        num_targets: target blocks ``M`` (4). target_scale ([0.15, 0.2]) and target_aspect_ratio ([0.75, 1.5]):
            ranges of a block's share of the grid and its aspect ratio. context_scale ([0.85, 1.0]) and
            context_aspect_ratio ([1.0, 1.0]): the context block's. full_axes ([]): axes every block spans
            (``[0]`` on a ``[T, H, W]`` grid gives V-JEPA's tubes). min_context (1): fewest context tokens
            allowed (I-JEPA's ``min_keep``, 10 there).
    """

    grid: list[int] | None = Field(None, min_length=1, max_length=3)
    num_targets: int = Field(4, ge=1)
    target_scale: tuple[float, float] = (0.15, 0.2)
    target_aspect_ratio: tuple[float, float] = (0.75, 1.5)
    context_scale: tuple[float, float] = (0.85, 1.0)
    context_aspect_ratio: tuple[float, float] = (1.0, 1.0)
    full_axes: list[int] = Field(default_factory=list)
    min_context: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _ranges(self) -> BlockMaskingConfig:
        for name in ("target_scale", "context_scale"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi <= 1:
                raise ValueError(f"{name} must be [min, max] with 0 < min <= max <= 1, got {[lo, hi]}")
        for name in ("target_aspect_ratio", "context_aspect_ratio"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f"{name} must be [min, max] with 0 < min <= max, got {[lo, hi]}")
        if self.grid is not None and min(self.grid) < 1:
            raise ValueError(f"grid sizes must be >= 1, got {self.grid}")
        return self


class BlockMasking(ViewGenerator):
    """Context block minus target blocks, batched on the device; block shapes drawn on the host per batch."""

    def __init__(self, cfg: BlockMaskingConfig):
        super().__init__()
        self.cfg = cfg

    def forward(self, batch: Any, generator: torch.Generator) -> Views:
        size, tokens, device = _batch_shape(batch)
        grid = tuple(self.cfg.grid) if self.cfg.grid else ((tokens,) if tokens else None)
        if not grid or math.prod(grid) < 2:
            raise ValueError("core.block_masking could not find the token grid of the batch; set grid in its config, e.g. grid: [14, 14]")
        if generator.device != device:
            generator = torch.Generator(device=device).manual_seed(generator.initial_seed())
        masks = multi_block_masks(
            size, grid, generator, num_targets=self.cfg.num_targets, target_scale=self.cfg.target_scale,
            target_aspect_ratio=self.cfg.target_aspect_ratio, context_scale=self.cfg.context_scale,
            context_aspect_ratio=self.cfg.context_aspect_ratio, full_axes=self.cfg.full_axes,
            min_context=self.cfg.min_context,
        )
        info = {
            "context_idx": masks.context_idx, "target_idx": masks.target_idx, "target_blocks": masks.target_blocks,
            "target_mask": masks.target_mask, "grid": grid,
        }
        return Views(inputs=[batch], original=batch, info=info)

    @classmethod
    def build(cls, cfg: BlockMaskingConfig, ctx: BuildContext) -> BlockMasking:
        return cls(cfg)
