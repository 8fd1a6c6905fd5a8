"""Core losses against lightly 1.6 on identical inputs: value and gradient parity, then the time ratio.

For every objective that lightly also implements, both losses get the same tensors; the values and the
gradients with respect to every input must agree to float tolerance (BYOL: omnissl's ``2 - 2 cos`` is the
paper's form, ``2 + 2 x`` lightly's negative cosine, so values map affinely and gradients are twice
lightly's). Then forward + backward is timed on one thread, alternating omnissl and lightly in one process one
call at a time in ABBA order, so machine noise hits both; the ratio is the median over rounds of omnissl's time
over lightly's (below 1: faster), with the machine's load average recorded beside it.

    uv run python benchmarks/objectives_vs_lightly.py [--batch-sizes 256 1024] [--seconds 2] [--only swav]

lightly is a development dependency only: the core never imports it. Writes
benchmarks/results/objectives_vs_lightly.json and prints the Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from omnissl.losses.barlow_twins import BarlowTwinsLoss
from omnissl.losses.byol import BYOLLoss
from omnissl.losses.mochi import MoCHiQueueLoss
from omnissl.losses.moco import MoCoLoss
from omnissl.losses.ntxent import NTXentLoss
from omnissl.losses.swav import SwAVLoss
from omnissl.losses.vicreg import VICRegLoss
from omnissl.nn.queue import FeatureQueue

Inputs = tuple[torch.Tensor, ...]


@dataclass
class Pair:
    """One objective at one batch size: the inputs, both losses, and how omnissl's value maps to lightly's."""

    inputs: Inputs
    ours: Callable[..., torch.Tensor]
    theirs: Callable[..., torch.Tensor]
    value_map: Callable[[torch.Tensor], torch.Tensor] = lambda v: v  # lightly's value -> omnissl's
    grad_scale: float = 1.0  # omnissl's gradient / lightly's
    modules: tuple = ()  # stateful parts (queues) that move with the inputs

    def to(self, device: torch.device) -> Pair:
        self.inputs = tuple(x.to(device) for x in self.inputs)
        for m in self.modules:
            m.to(device)
        return self


def _randn(g: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=g)


def _cosine_scores(g: torch.Generator, batch: int, prototypes: int, dim: int = 128) -> torch.Tensor:
    return F.normalize(_randn(g, batch, dim), dim=1) @ F.normalize(_randn(g, prototypes, dim), dim=1).T


def ntxent(batch: int, g: torch.Generator) -> Pair:
    from lightly.loss import NTXentLoss as LightlyNTXent

    return Pair((_randn(g, batch, 128), _randn(g, batch, 128)), NTXentLoss(0.5), LightlyNTXent(temperature=0.5))


def barlow_twins(batch: int, g: torch.Generator) -> Pair:
    from lightly.loss import BarlowTwinsLoss as LightlyBarlowTwins

    return Pair((_randn(g, batch, 1024), _randn(g, batch, 1024)), BarlowTwinsLoss(0.0051), LightlyBarlowTwins(lambda_param=0.0051))


def vicreg(batch: int, g: torch.Generator) -> Pair:
    from lightly.loss import VICRegLoss as LightlyVICReg

    return Pair((_randn(g, batch, 1024), _randn(g, batch, 1024)), VICRegLoss(), LightlyVICReg())


def byol(batch: int, g: torch.Generator) -> Pair:
    from lightly.loss import NegativeCosineSimilarity

    # omnissl detaches the target (BYOL's stop-gradient); give lightly a detached target too
    return Pair(
        (_randn(g, batch, 256), _randn(g, batch, 256)), BYOLLoss(),
        lambda p, z: NegativeCosineSimilarity()(p, z.detach()), value_map=lambda v: 2 + 2 * v, grad_scale=2.0,
    )


def swav(batch: int, g: torch.Generator) -> Pair:
    from lightly.loss import SwaVLoss

    theirs = SwaVLoss(temperature=0.1, sinkhorn_iterations=3, sinkhorn_epsilon=0.05)
    return Pair(
        (_cosine_scores(g, batch, 3000), _cosine_scores(g, batch, 3000)), SwAVLoss(0.1, 0.05, 3),
        lambda a, b: theirs([a, b], []),
    )


def swav_multicrop_queue(batch: int, g: torch.Generator) -> Pair:
    """SwAV as trained on ImageNet: 2 large + 6 small crops, a queue of 3840 embeddings per large crop."""
    from lightly.loss import SwaVLoss

    theirs = SwaVLoss(temperature=0.1, sinkhorn_iterations=3, sinkhorn_epsilon=0.05)
    ours = SwAVLoss(0.1, 0.05, 3)
    crops = tuple(_cosine_scores(g, batch, 3000) for _ in range(8))
    queue = [_cosine_scores(g, 3840, 3000) for _ in range(2)]
    return Pair(
        crops, lambda *c: ours.multi_crop(list(c[:2]), list(c[2:]), queue),
        lambda *c: theirs(list(c[:2]), list(c[2:]), queue),
    )


def _queues(g: torch.Generator, size: int, dim: int):
    """A FeatureQueue and lightly's memory bank holding the same unit keys."""
    from lightly.loss import NTXentLoss as LightlyNTXent

    keys = F.normalize(_randn(g, size, dim), dim=1)
    ours = FeatureQueue(size, dim)
    ours.push(keys)
    theirs = LightlyNTXent(temperature=0.2, memory_bank_size=(size, dim))
    theirs.memory_bank.bank.copy_(keys)
    return ours, theirs


def moco(batch: int, g: torch.Generator) -> Pair:
    """MoCo v2's InfoNCE on a 16384-key queue, then the enqueue of the batch's keys (both libraries)."""
    queue, theirs = _queues(g, 16384, 128)
    loss = MoCoLoss(0.2)

    def ours(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        value = loss(q, k, queue.values())
        queue.push(F.normalize(k.detach(), dim=1))
        return value

    return Pair((_randn(g, batch, 128), _randn(g, batch, 128)), ours, lambda q, k: theirs(q, k.detach()), modules=(queue, theirs))


def mochi_no_mixing(batch: int, g: torch.Generator) -> Pair:
    """MoCHi's queue loss with ``s = s' = 0`` is MoCo: it must cost the same (no top-k of hard negatives)."""
    queue, theirs = _queues(g, 16384, 128)
    loss = MoCHiQueueLoss(0.2, num_hard=1024, num_mix=0, num_query_mix=0)

    def ours(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        value = loss(q, k, queue.values())
        queue.push(F.normalize(k.detach(), dim=1))
        return value

    return Pair((_randn(g, batch, 128), _randn(g, batch, 128)), ours, lambda q, k: theirs(q, k.detach()), modules=(queue, theirs))


CASES: dict[str, Callable[[int, torch.Generator], Pair]] = {
    "ntxent": ntxent,
    "barlow_twins": barlow_twins,
    "vicreg": vicreg,
    "byol": byol,
    "swav": swav,
    "swav_multicrop_queue": swav_multicrop_queue,
    "moco": moco,
    "mochi_no_mixing": mochi_no_mixing,
}


def _run(fn: Callable[..., torch.Tensor], inputs: Inputs) -> tuple[torch.Tensor, list[torch.Tensor]]:
    leaves = [x.clone().requires_grad_(True) for x in inputs]
    value = fn(*leaves)
    grads = torch.autograd.grad(value, leaves, allow_unused=True)
    return value.detach().reshape(()), [torch.zeros_like(x) if gr is None else gr for x, gr in zip(leaves, grads)]


def check_parity(name: str, batch: int, seed: int = 0, rtol: float = 1e-4, device: str = "cpu") -> dict:
    """Value and gradient of omnissl and lightly on the same inputs; raises AssertionError on a mismatch."""
    pair = CASES[name](batch, torch.Generator().manual_seed(seed)).to(torch.device(device))
    ours, ours_grads = _run(pair.ours, pair.inputs)
    theirs, theirs_grads = _run(pair.theirs, pair.inputs)
    expected = pair.value_map(theirs)
    value_err = float((ours - expected).abs())
    assert value_err <= rtol * max(1.0, float(expected.abs())), f"{name} at B={batch}: value {float(ours)} != lightly {float(expected)}"
    grad_err = 0.0
    for i, (a, b) in enumerate(zip(ours_grads, theirs_grads)):
        b = b * pair.grad_scale
        err = float((a - b).abs().max())
        scale = float(b.abs().max())
        assert err <= rtol * scale + 1e-9, f"{name} at B={batch}: gradient of input {i} differs by {err:.3g} (scale {scale:.3g})"
        grad_err = max(grad_err, err / max(scale, 1e-12))
    return {"value": float(ours), "lightly_value": float(expected), "value_abs_err": value_err, "grad_rel_err": grad_err}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_one(fn: Callable[..., torch.Tensor], leaves: list[torch.Tensor]) -> float:
    for x in leaves:
        x.grad = None
    _sync(leaves[0].device)
    start = time.perf_counter()
    fn(*leaves).backward()
    _sync(leaves[0].device)
    return time.perf_counter() - start


def time_ratio(name: str, batch: int, min_rounds: int = 7, seconds: float = 2.0, device: str = "cpu") -> dict:
    """Forward + backward of each, one call at a time in ABBA order; the ratio is the median of the per-round
    ratios (paired rounds cancel the load drift of a shared machine), beside each side's median time."""
    pair = CASES[name](batch, torch.Generator().manual_seed(0)).to(torch.device(device))
    leaves = [x.clone().requires_grad_(True) for x in pair.inputs]
    for fn in (pair.ours, pair.theirs, pair.ours, pair.theirs):  # warm-up (allocator, lazy init)
        _time_one(fn, leaves)
    once = _time_one(pair.ours, leaves) + _time_one(pair.theirs, leaves)
    rounds = max(min_rounds, int(seconds / max(once, 1e-6)))
    ours, theirs = [], []
    for r in range(rounds):
        if r % 2 == 0:
            ours.append(_time_one(pair.ours, leaves))
            theirs.append(_time_one(pair.theirs, leaves))
        else:
            theirs.append(_time_one(pair.theirs, leaves))
            ours.append(_time_one(pair.ours, leaves))
    ratios = [a / b for a, b in zip(ours, theirs)]
    return {
        "omnissl_ms": 1e3 * statistics.median(ours), "lightly_ms": 1e3 * statistics.median(theirs),
        "ratio": statistics.median(ratios), "rounds": rounds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--rounds", type=int, default=7, help="fewest ABBA rounds per case")
    parser.add_argument("--seconds", type=float, default=2.0, help="time budget per case and side")
    parser.add_argument("--only", nargs="*", default=None, help=f"subset of {sorted(CASES)}")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (fp32 inputs on the device; GPU times need a sync, done)")
    parser.add_argument("--out", default="benchmarks/results/objectives_vs_lightly.json")
    args = parser.parse_args()
    import lightly

    torch.set_num_threads(1)
    names = args.only or list(CASES)
    unknown = sorted(set(names) - set(CASES))
    if unknown:
        parser.error(f"unknown objectives {unknown}; valid choices: {sorted(CASES)}")
    rows = []
    for name in names:
        for batch in args.batch_sizes:
            parity = check_parity(name, batch, device=args.device)
            timing = time_ratio(name, batch, args.rounds, args.seconds, args.device)
            rows.append({"objective": name, "batch": batch, **parity, **timing})
            print(
                f"{name:22s} B={batch:5d}  omnissl {timing['omnissl_ms']:8.2f} ms  lightly {timing['lightly_ms']:8.2f} ms  "
                f"ratio {timing['ratio']:.2f}  value err {parity['value_abs_err']:.1e}  grad rel err {parity['grad_rel_err']:.1e}",
                flush=True,
            )
    meta = {
        "torch": torch.__version__, "lightly": lightly.__version__, "threads": 1,
        "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
        "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
        "load_average": os.getloadavg(),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print("\n| objective | batch | omnissl (ms) | lightly (ms) | ratio | value err | grad rel err |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['objective']} | {r['batch']} | {r['omnissl_ms']:.2f} | {r['lightly_ms']:.2f} | {r['ratio']:.2f} | "
            f"{r['value_abs_err']:.1e} | {r['grad_rel_err']:.1e} |"
        )


if __name__ == "__main__":
    main()
