"""``gather_with_grad`` whose backward receives contiguous gradients.

torch's all_gather backward on gloo (``_AlltoAll``) returns wrong values when the incoming gradient is a
non-contiguous view (for example after an einops ``rearrange`` of the gathered tensor): observed with torch
2.11 on two CPU processes. Making the gradient contiguous before it reaches the collective avoids it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from omnissl import distributed


class _ContiguousGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return grad.contiguous()


def gather_with_grad(x: Tensor) -> Tensor:
    """:func:`omnissl.distributed.gather_with_grad` with a contiguous gradient on the way back."""
    if distributed.world_size() == 1:
        return x
    return _ContiguousGrad.apply(distributed.gather_with_grad(x))
