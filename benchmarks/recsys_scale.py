"""Two-tower at catalogue scale: a generated catalogue of >= 1M items, in-batch-negative training with the SSL
item-tower task, then full-catalogue top-K retrieval in fixed-size user batches.

Reports training throughput (interactions/s and SSL items/s; on a shared CPU also the process CPU time per
step, which contention does not inflate), evaluation throughput (users ranked against the
whole catalogue per second) and peak memory (CUDA: ``max_memory_allocated``; CPU: peak RSS of the process).
The evaluation's working memory is bounded by ``max_batch_elements`` scores per user batch, whatever the
number of users.

Usage::

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/recsys_scale.py [--items 1000000] [--users 100000] [--steps 30]

Writes ``runs/recsys/scale.json``; the table goes to ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from pathlib import Path

import torch

from omnissl.evaluation.api import EvalRun
from omnissl.optim import OptimizerConfig, build_optimizer
from omnissl_recsys.datasets import GeneratedConfig, generate
from omnissl_recsys.encoders import TwoTowerConfig, build_two_tower
from omnissl_recsys.evaluators import RankingConfig, RankingEvaluator
from omnissl_recsys.objectives import TwoTowerObjectiveConfig, build_two_tower_objective
from omnissl_recsys.views import FeatureMaskingConfig, build_feature_masking
from omnissl.specs import BuildContext

ROOT = Path(__file__).resolve().parents[1]


def peak_memory_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--items", type=int, default=1_000_000)
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--interactions-per-user", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=4096)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--eval-users", type=int, default=2000)
    p.add_argument("--max-batch-elements", type=int, default=1 << 24)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", default=str(ROOT / "runs" / "recsys" / "scale.json"))
    args = p.parse_args(argv)
    device = torch.device(args.device)
    result: dict = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"}

    t0 = time.perf_counter()
    source = generate(GeneratedConfig(num_users=args.users, num_items=args.items, num_categories=200, tags_per_category=20,
                                      interactions_per_user=args.interactions_per_user, seed=0)).to(device)
    result["generate_s"] = time.perf_counter() - t0
    result.update(items=source.num_items, users=source.num_users, train_interactions=len(source))
    ctx = BuildContext(data=source, seed=0)
    torch.manual_seed(0)
    encoder = build_two_tower(TwoTowerConfig(dim=64, token_dim=32, hidden_dim=128), ctx).to(device)
    ctx.encoder = encoder
    views = build_feature_masking(FeatureMaskingConfig(mode="correlated"), ctx).to(device)
    objective = build_two_tower_objective(TwoTowerObjectiveConfig(ssl_weight=0.1), ctx).to(device)
    optimizer = build_optimizer(OptimizerConfig(name="adamw", lr=1e-3, weight_decay=0.0), encoder.named_parameters(), device)
    generator = torch.Generator(device=device)
    perm = torch.randperm(len(source), device=device)

    def step(k: int) -> torch.Tensor:
        idx = perm[(k * args.batch_size) % (len(source) - args.batch_size) :][: args.batch_size]
        generator.manual_seed(k)
        out = objective(encoder, views(source.batch(idx), generator))
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return out.loss.detach()

    for k in range(args.warmup):
        step(k)
    sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    losses = [step(args.warmup + k) for k in range(args.steps)]
    sync(device)
    train_s, train_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    result.update(
        batch_size=args.batch_size, steps=args.steps, step_ms=1000 * train_s / args.steps, step_cpu_ms=1000 * train_cpu_s / args.steps,
        interactions_per_s=args.steps * args.batch_size / train_s, ssl_items_per_s=args.steps * args.batch_size / train_s,
        loss_first=float(losses[0]), loss_last=float(losses[-1]), peak_mib_after_train=peak_memory_mib(device),
    )

    evaluator = RankingEvaluator(RankingConfig(ks=[10, 20], splits=["test"], baselines=[], max_batch_elements=args.max_batch_elements, max_users=args.eval_users))
    sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    metrics = evaluator(EvalRun(encoder=encoder, data=source, device=device, random_encoder=lambda: None)).metrics
    sync(device)
    eval_s, eval_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    result.update(
        eval_users=metrics["test/users"], eval_s=eval_s, eval_cpu_s=eval_cpu_s, eval_users_per_s=metrics["test/users"] / eval_s,
        users_per_eval_batch=max(1, args.max_batch_elements // source.num_items), recall_at_20=metrics["test/recall@20"],
        ndcg_at_20=metrics["test/ndcg@20"], peak_mib=peak_memory_mib(device),
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
