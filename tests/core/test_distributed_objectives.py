"""Two CPU processes (gloo) give the one-process loss and gradients of the gather-based losses.

Each process holds half of a fixed global batch. With local rows against gathered columns, the loss of
the global batch is the mean of the per-process losses, and each process's gradient on its own slice is
``world_size`` times the one-process gradient (DDP's gradient average divides it back); replicated
parameters (AMCL's temperature MLP) average to the one-process gradient across processes.
"""

import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from omnissl.losses.amcl import AMCLLoss
from omnissl.losses.barlow_twins import BarlowTwinsLoss
from omnissl.losses.mochi import MoCHiNTXentLoss, MoCHiQueueLoss
from omnissl.losses.ntxent import NTXentLoss
from omnissl.losses.swav import SwAVLoss, sinkhorn_knopp
from omnissl.losses.vicreg import VICRegLoss


WORLD = 2
BATCH = 8  # global


def _inputs():
    g = torch.Generator().manual_seed(0)
    return {
        "a": torch.randn(BATCH, 6, generator=g),
        "b": torch.randn(BATCH, 6, generator=g),
        "ha": torch.randn(BATCH, 2, 6, generator=g),
        "hb": torch.randn(BATCH, 2, 6, generator=g),
        "queue": torch.randn(12, 6, generator=g),
        "sa": torch.randn(BATCH, 5, generator=g),
        "sb": torch.randn(BATCH, 5, generator=g),
    }


def _amcl():
    torch.manual_seed(3)
    return AMCLLoss(dim=6, beta=0.05, tau_min=0.05, tau_max=1.0, hidden_dim=8)


def _compute(x, sl):
    """Every loss on the rows ``sl`` of the global inputs: {name: (loss, grads...)}."""
    out = {}
    pairs = {
        "ntxent": (NTXentLoss(0.3), "a", "b", {}),
        "mochi": (MoCHiNTXentLoss(0.3, num_hard=5, num_mix=3, num_query_mix=2), "a", "b", {"gen": 11}),
        "barlow": (BarlowTwinsLoss(), "a", "b", {}),
        "vicreg": (VICRegLoss(), "a", "b", {}),
        "swav": (SwAVLoss(0.1, 0.05, 3), "sa", "sb", {}),
    }
    for name, (fn, ka, kb, extra) in pairs.items():
        a, b = x[ka][sl].clone().requires_grad_(True), x[kb][sl].clone().requires_grad_(True)
        loss = fn(a, b, generator=torch.Generator().manual_seed(extra["gen"])) if "gen" in extra else fn(a, b)
        ga, gb = torch.autograd.grad(loss, (a, b))
        out[name] = [loss.detach(), ga, gb]
    q = x["a"][sl].clone().requires_grad_(True)
    loss = MoCHiQueueLoss(0.2, num_hard=6, num_mix=3, num_query_mix=2)(q, x["b"][sl], x["queue"], generator=torch.Generator().manual_seed(5))
    out["mochi_queue"] = [loss.detach(), torch.autograd.grad(loss, q)[0]]
    amcl = _amcl()
    a, b = x["ha"][sl].clone().requires_grad_(True), x["hb"][sl].clone().requires_grad_(True)
    loss = amcl(a, b)
    grads = torch.autograd.grad(loss, [a, b, *amcl.parameters()])
    out["amcl"] = [loss.detach(), *grads]
    out["sinkhorn"] = [sinkhorn_knopp(x["sa"][sl], 0.05, 3)]
    return out


def _worker(rank, init_file, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        local = BATCH // WORLD
        torch.save(_compute(_inputs(), slice(rank * local, (rank + 1) * local)), os.path.join(out_dir, f"{rank}.pt"))
        dist.barrier()  # no rank tears gloo down while the other still has collectives in flight
    finally:
        dist.destroy_process_group()


def test_two_processes_match_one_process(tmp_path):
    mp.spawn(_worker, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"{r}.pt") for r in range(WORLD)]
    ref = _compute(_inputs(), slice(None))
    local = BATCH // WORLD
    for name in ("ntxent", "mochi", "barlow", "vicreg", "swav", "mochi_queue", "amcl"):
        loss = torch.stack([r[name][0] for r in ranks]).mean()
        assert torch.allclose(loss, ref[name][0], atol=1e-5), name
        n_inputs = 1 if name == "mochi_queue" else 2
        for i in range(1, 1 + n_inputs):
            grad = torch.cat([r[name][i] for r in ranks]) / WORLD
            assert torch.allclose(grad, ref[name][i], atol=1e-5), f"{name} gradient {i}"
        for i in range(1 + n_inputs, len(ref[name])):  # replicated parameters: DDP's average
            grad = torch.stack([r[name][i] for r in ranks]).mean(dim=0)
            assert torch.allclose(grad, ref[name][i], atol=1e-5), f"{name} parameter gradient {i}"
    codes = torch.cat([r["sinkhorn"][0] for r in ranks])
    assert torch.allclose(codes, ref["sinkhorn"][0], atol=1e-5)


