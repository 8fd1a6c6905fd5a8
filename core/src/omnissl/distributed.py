"""Process-group helpers; objectives gather across processes through :func:`gather_with_grad`.

Under ``torchrun`` the engine initialises the default process group (NCCL on CUDA, gloo on CPU) and wraps
the model in DDP. An objective that needs negatives from every process (NT-Xent, MoCHi, multi-head
contrastive) calls ``gather_with_grad(z)``: the result is the concatenation over ranks in rank order, and
gradients flow back to each rank's own slice, so the loss equals the one-process loss on the global batch.
Losses that average over the local batch should be written so that the DDP gradient average (which
divides by the world size) gives the global-batch gradient: compute the loss over *local* rows against
*global* columns, then average over local rows.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


class _ContiguousGrad(torch.autograd.Function):
    """Identity whose backward makes the gradient contiguous.

    torch 2.11's all_gather backward on gloo returns wrong values, silently, when the incoming gradient is
    a non-contiguous view (for example after an einops ``rearrange`` of the gathered tensor).
    """

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return grad.contiguous()


def gather_with_grad(x: Tensor) -> Tensor:
    """Concatenate ``x`` (``(B, ...)``, same shape on every rank) over ranks along dim 0, keeping gradients."""
    if not is_distributed() or world_size() == 1:
        return x
    from torch.distributed.nn.functional import all_gather

    return _ContiguousGrad.apply(torch.cat(all_gather(x.contiguous()), dim=0))


def gather_no_grad(x: Tensor) -> Tensor:
    """Concatenate ``x`` over ranks along dim 0 without gradients (queues, statistics, Sinkhorn)."""
    if not is_distributed() or world_size() == 1:
        return x
    out = [torch.empty_like(x) for _ in range(world_size())]
    dist.all_gather(out, x.contiguous())
    return torch.cat(out, dim=0)


def all_reduce_sum(x: Tensor) -> Tensor:
    """Sum ``x`` over ranks in place and return it (no gradient)."""
    if is_distributed() and world_size() > 1:
        dist.all_reduce(x)
    return x
