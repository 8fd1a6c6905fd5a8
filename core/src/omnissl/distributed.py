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


class StopAgreement:
    """Ranks agree on the step at which a signal stops the run, without a device sync.

    A signal may reach one rank only, or ranks at different steps; stopping on the local flag would leave
    the others waiting in the next gradient all-reduce. Instead, at every step boundary each rank puts its
    flag into an asynchronous MAX all-reduce on a CPU (gloo) side group and reads the result of the reduction
    it started at the previous boundary, so every rank sees the same answer at the same step (one step after
    the signal at most). In a single process the local flag is read directly.
    """

    def __init__(self) -> None:
        self.signals: list[int] = []  # appended to by the signal handlers
        self.group = dist.new_group(backend="gloo") if world_size() > 1 else None
        self.pending: tuple[dist.Work, Tensor] | None = None

    def check(self, save: bool = False) -> tuple[int, bool]:
        """``(signal to stop on or 0, whether to checkpoint now)``; called at every step boundary, by every rank.

        ``save`` is this rank's wish for a checkpoint (rank 0's wall clock); the answer is the same on every
        rank, so all of them enter the checkpoint's barrier at the same step.
        """
        if self.group is None:
            return (self.signals[0] if self.signals else 0), save
        agreed = self.finish()
        flag = torch.tensor([self.signals[0] if self.signals else 0, int(save)], dtype=torch.int32)
        self.pending = (dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self.group, async_op=True), flag)
        return agreed

    def finish(self) -> tuple[int, bool]:
        """Wait for the reduction in flight, if any, and return its result."""
        if self.pending is None:
            return 0, False
        work, flag = self.pending
        work.wait()
        self.pending = None
        signum, save = flag.tolist()
        return int(signum), bool(save)

    def final_check(self) -> int:
        """After the last step: the signal any rank received (0: none), agreed by one blocking reduction."""
        if self.group is None:
            return self.signals[0] if self.signals else 0
        earlier, _ = self.finish()
        flag = torch.tensor([earlier or (self.signals[0] if self.signals else 0)], dtype=torch.int32)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self.group)
        return int(flag.item())
