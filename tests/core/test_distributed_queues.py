"""Two CPU processes (gloo) for the pieces added with core.moco, SwAV's queue and AMCL's top-k variant.

- the direct Sinkhorn reduces its row sums over processes: the codes of the two halves are the one-process
  codes of the global batch (as the log-domain path, tested in ``test_distributed_objectives.py``);
- AMCL ``negatives="topk"`` picks the top-k among the global negatives: the loss is the one-process loss;
- a gathering ``FeatureQueue`` holds the keys of every process in rank order, the same queue on each;
- SwAV with a queue: each process feeds a ``rank::world`` slice of the shared queue to Sinkhorn, which gives
  the one-process loss of the global batch with the whole queue (the reference's per-GPU queues).
"""

import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from omnissl.losses.amcl import AMCLLoss
from omnissl.losses.swav import SwAVLoss, sinkhorn_knopp
from omnissl.nn.queue import FeatureQueue

WORLD = 2
BATCH = 8  # global


def _inputs():
    g = torch.Generator().manual_seed(0)
    scores = torch.nn.functional.normalize(torch.randn(BATCH, 4, generator=g), dim=1)
    return {
        "scores": scores @ torch.nn.functional.normalize(torch.randn(5, 4, generator=g), dim=1).T,
        "ha": torch.randn(BATCH, 2, 6, generator=g),
        "hb": torch.randn(BATCH, 2, 6, generator=g),
        "sa": torch.randn(BATCH, 5, generator=g).tanh(),
        "sb": torch.randn(BATCH, 5, generator=g).tanh(),
        "queue_a": torch.randn(6, 5, generator=g).tanh(),
        "queue_b": torch.randn(6, 5, generator=g).tanh(),
    }


def _compute(x, sl, rank=0, world=1):
    torch.manual_seed(3)
    amcl = AMCLLoss(dim=6, beta=0.05, tau_min=0.05, tau_max=1.0, hidden_dim=8, negatives="topk", topk=5)
    a, b = x["ha"][sl].clone().requires_grad_(True), x["hb"][sl].clone().requires_grad_(True)
    loss = amcl(a, b)
    ga, gb = torch.autograd.grad(loss, (a, b))
    sa, sb = x["sa"][sl].clone().requires_grad_(True), x["sb"][sl].clone().requires_grad_(True)
    swav = SwAVLoss().multi_crop([sa, sb], [], [x["queue_a"][rank::world], x["queue_b"][rank::world]])
    return {
        "codes": sinkhorn_knopp(x["scores"][sl], 0.05, 3, score_bound=1.0), "amcl": [loss.detach(), ga, gb],
        "swav": [swav.detach(), *torch.autograd.grad(swav, (sa, sb))],
    }


def _worker(rank, init_file, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        local = BATCH // WORLD
        out = _compute(_inputs(), slice(rank * local, (rank + 1) * local), rank, WORLD)
        shared, own = FeatureQueue(6, 2, init="empty"), FeatureQueue(6, 2, init="empty", gather=False)
        for step in range(2):
            rows = torch.full((2, 2), float(10 * step + rank))
            shared.push(rows)
            own.push(rows)
        out["shared"], out["own"] = shared.ordered(), own.ordered()
        torch.save(out, os.path.join(out_dir, f"{rank}.pt"))
        dist.barrier()  # no rank tears gloo down while the other still has collectives in flight
    finally:
        dist.destroy_process_group()


def test_two_processes_match_one_process(tmp_path):
    mp.spawn(_worker, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"{r}.pt") for r in range(WORLD)]
    ref = _compute(_inputs(), slice(None))
    assert torch.allclose(torch.cat([r["codes"] for r in ranks]), ref["codes"], atol=1e-5)
    for name in ("amcl", "swav"):
        assert torch.allclose(torch.stack([r[name][0] for r in ranks]).mean(), ref[name][0], atol=1e-5), name
        for i in (1, 2):
            assert torch.allclose(torch.cat([r[name][i] for r in ranks]) / WORLD, ref[name][i], atol=1e-5), name
    # gathered queue: rank 0's rows then rank 1's, step after step, oldest dropped; identical on both ranks
    expected = torch.tensor([0.0, 0, 1, 1, 10, 10, 11, 11])[-6:]
    for r in ranks:
        assert torch.equal(r["shared"][:, 0], expected)
    assert torch.equal(ranks[1]["own"][:, 0], torch.tensor([1.0, 1, 11, 11]))  # gather=False: own rows only
