"""Reproduce the graph plugin's quality numbers: run a config for several seeds, report mean ± std.

Usage (from the repository root)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/graph_quality.py plugins/graph/src/omnissl_graph/configs/cora_graphmae.yaml \
        --seeds 0 1 2 3 4 --out runs/graph/quality_cora_graphmae.json
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/graph_quality.py plugins/graph/src/omnissl_graph/configs/cora_grace.yaml \
        'tasks[0].eval[0].normalize=l2' --seeds 0 1 2 3 4     # overrides go before the options

Each seed is one engine run (``omnissl.engine.Trainer``) with ``seed=<s>`` and ``logging.out_dir`` per seed;
the evaluators' metrics are collected from ``result.evals`` and summarised across seeds.

``--optimizer adam`` (default) sets ``engine.optimizer.name=adam`` and ``decay_all_params=true``: Adam with
coupled L2 decay on every parameter, which is what the official GraphMAE/GRACE/GraphCL code uses.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def run_one(config: str, seed: int, overrides: list[str], optimizer: str) -> dict[str, float]:
    from omnissl.config import load_config
    from omnissl.engine import Trainer

    out_dir = f"runs/graph/quality/{Path(config).stem}/seed{seed}"
    if optimizer == "adam":  # the official code's torch.optim.Adam with L2 decay on every parameter
        overrides = ["engine.optimizer.name=adam", "engine.optimizer.decay_all_params=true", *overrides]
    cfg = load_config(config, [f"seed={seed}", f"logging.out_dir={out_dir}", "logging.progress=false", *overrides])
    trainer = Trainer(cfg)
    start = time.perf_counter()
    result = trainer.fit()
    metrics = {f"{e.name}/{k}": v for e in result.evals for k, v in e.metrics.items()}
    metrics["train_seconds"] = time.perf_counter() - start
    return metrics


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--optimizer", choices=["engine", "adam"], default="adam")
    parser.add_argument("--out", default=None, help="JSON file for per-seed and summary metrics")
    parser.add_argument("overrides", nargs="*", help="key.path=value overrides passed to every run")
    args = parser.parse_args(argv)
    per_seed = {}
    for seed in args.seeds:
        per_seed[seed] = run_one(args.config, seed, args.overrides, args.optimizer)
        print(json.dumps({"seed": seed, **per_seed[seed]}), flush=True)
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps({"config": args.config, "overrides": args.overrides, "optimizer": args.optimizer, "per_seed": per_seed}, indent=2))
    keys = sorted(set().union(*per_seed.values()))
    summary = {k: (float(np.mean([m[k] for m in per_seed.values() if k in m])), float(np.std([m[k] for m in per_seed.values() if k in m]))) for k in keys}
    print(f"{args.config} over seeds {args.seeds} (optimizer: {args.optimizer})")
    for k, (mean, std) in summary.items():
        scale = 1 if k == "train_seconds" else 100
        print(f"  {k:40s} {scale * mean:8.2f} ± {scale * std:.2f}")
    if args.out:
        Path(args.out).write_text(json.dumps({"config": args.config, "overrides": args.overrides, "optimizer": args.optimizer, "per_seed": per_seed, "summary": summary}, indent=2))


if __name__ == "__main__":
    sys.exit(main())
