"""I-JEPA's multi-block masks on token grids of 1, 2 or 3 axes (frames, image-like grids, tubes, volumes).

Reference: Assran et al., "Self-Supervised Learning from Images with a Joint-Embedding Predictive
Architecture" (I-JEPA), CVPR 2023, section 3 and github.com/facebookresearch/ijepa ``src/masks/multiblock.py``
(``MaskCollator``): ``M = 4`` target blocks of scale ``(0.15, 0.2)`` and aspect ratio ``(0.75, 1.5)``; one
context block of scale ``(0.85, 1.0)``, aspect ratio 1, from which the target tokens are removed. Block sizes
are drawn once per batch (so every sample's blocks have the same shape); positions per sample.

Block extents. As I-JEPA, one uniform draw ``u`` per batch and block kind sets the scale and the aspect ratio
``r`` (both linear in ``u``). On ``d`` free axes a block of ``V = floor(scale * prod(sizes))`` tokens gets
extents ``e_j = (V * r_{j+1} / r_j) ** (1 / d)`` with ``r_0 = r_d = 1`` and ``r_1 = ... = r_{d-1} = r``: on two
axes ``(sqrt(V r), sqrt(V / r))``, I-JEPA's ``h, w``; on one axis ``V``; on three ``((V r)^(1/3), V^(1/3),
(V / r)^(1/3))``. As in I-JEPA an extent is rounded and kept below its axis size (``e < size``; an axis of
size 1 keeps 1). Block corners are uniform over every valid position (I-JEPA's ``randint(0, H - h)`` never
places a block on the last valid row; that quirk is not copied). ``full_axes``
span their whole axis (V-JEPA's tubes through time: ``full_axes=(0,)`` on a ``(T, H, W)`` grid), and the scale
applies to the other axes.

Shapes without a device read. A target block has exactly ``prod(e)`` tokens, known on the host, so
``target_blocks`` is ``(B, M, prod(e))``. I-JEPA truncates every sample's context to the smallest in the batch,
which needs the counts on the host (a sync); here the context size is fixed to
``min(context block volume, N - M * prod(e))``, which is never more than the tokens outside the targets, and
filled first from the context block's non-target tokens (a random subset if there are more), then from other
non-target tokens: no target token can enter the context. Written by hand: I-JEPA's collator, lightly's
``MaskCollator`` and MONAI's maskers work per sample in Python, on 2-D images only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor


@dataclass(frozen=True)
class BlockMasks:
    """The masks of one batch.

    Attributes:
        context_idx: ``(B, Kc)`` sorted token indices the context encoder sees.
        target_idx: ``(B, M * Kb)`` every target block's indices, block after block (a token in two
            overlapping blocks appears twice, as I-JEPA predicts each block on its own).
        target_blocks: ``(B, M, Kb)`` the same indices per block, each block sorted.
        target_mask: ``(B, N)`` bool, ``True`` at tokens in any target block.
        block_shape: the target blocks' extent on every axis; context_shape: the context block's.
    """

    context_idx: Tensor
    target_idx: Tensor
    target_blocks: Tensor
    target_mask: Tensor
    block_shape: tuple[int, ...]
    context_shape: tuple[int, ...]


def block_extents(
    grid: Sequence[int], scale: float, aspect_ratios: Sequence[float], full_axes: Sequence[int] = ()
) -> tuple[int, ...]:
    """Extents of a block covering about ``scale`` of the free axes, with the given ``d - 1`` aspect ratios."""
    free = [i for i in range(len(grid)) if i not in set(full_axes)]
    if not free:
        return tuple(grid)
    volume = int(scale * math.prod(grid[i] for i in free))  # I-JEPA's max_keep, floored
    ratios = [1.0, *aspect_ratios[: len(free) - 1], 1.0]
    extents = list(grid)
    for j, axis in enumerate(free):
        e = round((volume * ratios[j + 1] / ratios[j]) ** (1 / len(free)))
        extents[axis] = max(1, min(e, grid[axis] - 1 if grid[axis] > 1 else 1))
    return tuple(extents)


def _block_offsets(grid: Sequence[int], extents: Sequence[int], device: torch.device) -> Tensor:
    """Flat indices of a block of ``extents`` placed at the origin, row-major: ``(prod(extents),)``."""
    strides = [math.prod(grid[i + 1 :]) for i in range(len(grid))]
    offsets = torch.zeros((), dtype=torch.long, device=device)
    for extent, stride in zip(extents, strides):
        offsets = offsets.unsqueeze(-1) + torch.arange(extent, device=device) * stride
    return offsets.reshape(-1)


def _place(grid: Sequence[int], extents: Sequence[int], shape: tuple[int, ...], generator: torch.Generator, device: torch.device) -> Tensor:
    """Flat indices of blocks at uniform random positions: ``shape + (prod(extents),)``, each block sorted."""
    strides = [math.prod(grid[i + 1 :]) for i in range(len(grid))]
    base = torch.zeros(shape, dtype=torch.long, device=device)
    for size, extent, stride in zip(grid, extents, strides):
        base = base + torch.randint(size - extent + 1, shape, generator=generator, device=device) * stride
    return base.unsqueeze(-1) + _block_offsets(grid, extents, device)


def multi_block_masks(
    batch_size: int,
    grid: Sequence[int],
    generator: torch.Generator,
    *,
    num_targets: int = 4,
    target_scale: tuple[float, float] = (0.15, 0.2),
    target_aspect_ratio: tuple[float, float] = (0.75, 1.5),
    context_scale: tuple[float, float] = (0.85, 1.0),
    context_aspect_ratio: tuple[float, float] = (1.0, 1.0),
    full_axes: Sequence[int] = (),
    min_context: int = 1,
) -> BlockMasks:
    """Draw I-JEPA's context and target blocks for ``batch_size`` samples on a token ``grid``.

    Args:
        grid: axis sizes, 1 to 3 of them (``(N,)``, ``(H, W)``, ``(T, H, W)``); tokens are numbered row-major.
        generator: a device generator; block positions are drawn from it, block shapes on the host from a
            CPU generator seeded with its ``initial_seed()`` (the engine re-seeds it every step), so the
            draw is reproducible and never reads the device.
        num_targets: ``M`` (4). target_scale (0.15, 0.2), target_aspect_ratio (0.75, 1.5), context_scale
            (0.85, 1.0), context_aspect_ratio (1.0, 1.0): I-JEPA's defaults. full_axes: axes every block spans.
        min_context: raise if fewer context tokens would remain (I-JEPA's ``min_keep``).

    Shapes:
        -> :class:`BlockMasks` with ``N = prod(grid)``.
    """
    grid = tuple(int(g) for g in grid)
    if not 1 <= len(grid) <= 3 or min(grid) < 1:
        raise ValueError(f"block masks need a grid of 1 to 3 positive axis sizes, got {grid}")
    if any(not 0 <= a < len(grid) for a in full_axes) or len(set(full_axes)) == len(grid):
        raise ValueError(f"full_axes {tuple(full_axes)} must name some, not all, of the {len(grid)} grid axes")
    for name, (lo, hi) in (("target_scale", target_scale), ("context_scale", context_scale)):
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"{name} must satisfy 0 < min <= max <= 1, got {(lo, hi)}")
    for name, (lo, hi) in (("target_aspect_ratio", target_aspect_ratio), ("context_aspect_ratio", context_aspect_ratio)):
        if not 0 < lo <= hi:
            raise ValueError(f"{name} must satisfy 0 < min <= max, got {(lo, hi)}")
    if num_targets < 1:
        raise ValueError(f"num_targets must be >= 1, got {num_targets}")
    device = generator.device
    host = torch.Generator().manual_seed(generator.initial_seed())
    free_axes = len(grid) - len(set(full_axes))

    def draw(scale: tuple[float, float], aspect: tuple[float, float]) -> tuple[int, ...]:
        # I-JEPA's _sample_block_size: one uniform draw sets both the scale and the aspect ratio
        u = float(torch.rand(1, generator=host, dtype=torch.float64))
        ratio = aspect[0] + u * (aspect[1] - aspect[0])
        return block_extents(grid, scale[0] + u * (scale[1] - scale[0]), [ratio] * (free_axes - 1), full_axes)

    block_shape = draw(target_scale, target_aspect_ratio)
    context_shape = draw(context_scale, context_aspect_ratio)
    n = math.prod(grid)
    block_size, context_volume = math.prod(block_shape), math.prod(context_shape)
    num_context = min(context_volume, n - num_targets * block_size)
    if num_context < max(1, min_context):
        raise ValueError(
            f"block masks on grid {grid}: {num_targets} target blocks of {block_shape} ({block_size} tokens each) leave "
            f"{max(num_context, 0)} context tokens, fewer than min_context={max(1, min_context)}; lower num_targets "
            "or target_scale, or use a larger grid"
        )
    target_blocks = _place(grid, block_shape, (batch_size, num_targets), generator, device)  # (B, M, Kb)
    context_block = _place(grid, context_shape, (batch_size,), generator, device)  # (B, Vc)
    target_mask = torch.zeros(batch_size, n, dtype=torch.bool, device=device)
    target_mask.scatter_(1, target_blocks.reshape(batch_size, -1), True)
    in_context = torch.zeros(batch_size, n, dtype=torch.bool, device=device).scatter_(1, context_block, True)
    # priority: context-block non-targets (2..3), other non-targets (1..2), targets (0..1)
    priority = torch.rand(batch_size, n, generator=generator, device=device)
    priority = priority + (~target_mask).to(priority.dtype) * (1 + in_context.to(priority.dtype))
    context_idx = priority.topk(num_context, dim=1).indices.sort(dim=1).values
    return BlockMasks(
        context_idx=context_idx, target_idx=target_blocks.reshape(batch_size, -1), target_blocks=target_blocks,
        target_mask=target_mask, block_shape=block_shape, context_shape=context_shape,
    )
