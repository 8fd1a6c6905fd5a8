"""Throughput accounting: FLOPs per step, TFLOP/s, MFU, data-wait share and peak memory at each log interval.

At start-up :func:`count_step_flops` runs one forward and backward of each task on a deep copy (so no
parameter, buffer, queue or RNG state of the run changes) under :class:`torch.utils.flop_counter.FlopCounterMode`
and records the FLOPs of one micro-batch. During training :class:`Accounting` only adds host-side numbers (a
``time.perf_counter`` around the wait for the next batch, and how many micro-batches of each task ran); it
never reads a tensor. At the log interval, which already syncs once, :meth:`Accounting.read` turns them into:

- ``tflops``: FLOPs run since the last log on this process, over the wall time, in 10^12 per second;
- ``mfu``: ``tflops`` over the peak of the device (``engine.peak_tflops``, or the bf16 dense peak of a known
  CUDA device from :data:`PEAK_TFLOPS`); absent when no peak is known (a CPU without ``engine.peak_tflops``);
- ``data_wait_fraction``: the host time spent getting the next batch over the wall time;
- ``peak_memory_gb``: ``torch.cuda.max_memory_allocated`` on CUDA (a host-side counter, no sync), otherwise
  the process's peak resident set size from :mod:`resource`;
- ``step_time_s``: wall time per optimizer step.

Why by hand: ``FlopCounterMode`` counts FLOPs but nothing in torch or Lightning turns them into MFU for an
arbitrary multi-task loop without a sync per step (Lightning's ``ThroughputMonitor`` needs the FLOPs passed in
and syncs each batch), so the bookkeeping is here. FLOPs counted this way cover matmuls, convolutions and
attention (what dominates MFU); element-wise ops are not counted, as in the PaLM MFU definition.
"""

from __future__ import annotations

import copy
import resource
import sys
import time
from typing import Any, Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

#: Dense bf16 peak TFLOP/s per device, from the vendors' data sheets (without sparsity). Matched by substring
#: of ``torch.cuda.get_device_name``; the first match wins, so longer names come first.
PEAK_TFLOPS: dict[str, float] = {
    "H200": 989.0,
    "H100 PCIe": 756.0,
    "H100": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
    "A10G": 70.0,
    "L4": 121.0,
    "RTX 4090": 165.0,
    "RTX 3090": 71.0,
}


def device_peak_tflops(device: torch.device, configured: float | None) -> float | None:
    """The peak to compute MFU against: ``configured`` if set, else a known CUDA device's bf16 peak, else None."""
    if configured is not None:
        return configured
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return next((peak for key, peak in PEAK_TFLOPS.items() if key in name), None)
    return None


def count_step_flops(step: Callable[[], torch.Tensor]) -> int:
    """FLOPs of ``step()`` (which returns a loss) plus its backward, counted with :class:`FlopCounterMode`."""
    with FlopCounterMode(display=False) as counter:
        loss = step()
        loss.backward()
    return int(counter.get_total_flops())


def task_flops(module: nn.Module, forward: Callable[[nn.Module], torch.Tensor]) -> int:
    """FLOPs of one forward and backward of ``forward(copy)`` on a deep copy of ``module``.

    The copy keeps the run untouched (BatchNorm statistics, MoCo queues, EMA teachers, gradients), and the
    CPU and CUDA RNG states are restored afterwards, so a run with accounting trains exactly as one without.
    """
    cpu_rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    try:
        clone = copy.deepcopy(module)
        return count_step_flops(lambda: forward(clone))
    finally:
        torch.set_rng_state(cpu_rng)
        if cuda_rng:
            torch.cuda.set_rng_state_all(cuda_rng)


def peak_memory_gb(device: torch.device) -> float:
    """Peak device memory (CUDA: allocated by tensors) or, elsewhere, the process's peak resident set, in GB."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 1e9
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1e9 if sys.platform == "darwin" else rss * 1024 / 1e9  # bytes on macOS, KiB on Linux


class Accounting:
    """Host-side counters between log intervals; :meth:`read` turns them into the logged fields.

    ``flops``: task name -> FLOPs of one micro-batch on this process (from :func:`task_flops`); a task missing
    from it (its count failed) leaves ``tflops``/``mfu`` out rather than under-reporting them.
    """

    def __init__(self, device: torch.device, flops: dict[str, int], peak_tflops: float | None):
        self.device, self.flops, self.peak_tflops = device, flops, peak_tflops
        self.reset()

    def reset(self) -> None:
        self.start = time.perf_counter()
        self.data_wait = 0.0
        self.micro: dict[str, int] = {}
        self.steps = 0

    def fetch(self, get: Callable[[], Any]) -> Any:
        """``get()`` (the next batch, moved to the device), timing the host's wait for it."""
        t0 = time.perf_counter()
        batch = get()
        self.data_wait += time.perf_counter() - t0
        return batch

    def count(self, task: str) -> None:
        self.micro[task] = self.micro.get(task, 0) + 1

    def step_done(self) -> None:
        self.steps += 1

    def read(self) -> dict[str, float]:
        """The fields for this log interval (call right after the interval's one host sync), then reset."""
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        out = {
            "data_wait_fraction": self.data_wait / elapsed,
            "step_time_s": elapsed / max(self.steps, 1),
            "peak_memory_gb": peak_memory_gb(self.device),
        }
        if self.micro and all(task in self.flops for task in self.micro):
            tflops = sum(self.flops[t] * n for t, n in self.micro.items()) / elapsed / 1e12
            out["tflops"] = tflops
            if self.peak_tflops:
                out["mfu"] = tflops / self.peak_tflops
        self.reset()
        return out
