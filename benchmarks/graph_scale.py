"""Scale benchmark: one neighbour-sampled GraphMAE epoch on a generated graph of a million nodes, on CPU.

Usage (from the repository root)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/graph_scale.py [--nodes 1000000] [--out runs/graph/scale.json] [key=value ...]

Runs ``plugins/graph/src/omnissl_graph/configs/sbm1m_graphmae_sampled.yaml`` through the engine and prints: graph build time, the
epoch's wall time, seed nodes per second, sampled (subgraph) nodes per second, and the peak resident memory
of the process (``ru_maxrss``), before and after training.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

import torch


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="plugins/graph/src/omnissl_graph/configs/sbm1m_graphmae_sampled.yaml")
    parser.add_argument("--nodes", type=int, default=1_000_000)
    parser.add_argument("--out", default=None)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()

    from omnissl.config import load_config
    from omnissl.engine import Trainer

    overrides = [f"tasks[0].data.num_nodes={args.nodes}", "logging.progress=false", *args.overrides]
    cfg = load_config(args.config, overrides)
    t0 = time.perf_counter()
    trainer = Trainer(cfg)
    build_s = time.perf_counter() - t0
    source = trainer.sources[cfg.tasks[0].name]
    mem_after_build = peak_mib()

    sampled = []
    original_batch = source.batch

    def counting_batch(indices):
        out = original_batch(indices)
        sampled.append(out.num_nodes)
        return out

    source.batch = counting_batch
    t1 = time.perf_counter()
    result = trainer.fit()
    train_s = time.perf_counter() - t1
    report = {
        "nodes": source.num_nodes,
        "edges": int(source.data.edge_index.shape[1]),
        "steps": result.step,
        "batch_size": cfg.engine.batch_size,
        "num_neighbors": source.num_neighbors,
        "build_seconds": round(build_s, 1),
        "epoch_seconds": round(train_s, 1),
        "seed_nodes_per_s": round(source.num_nodes / train_s, 1),
        "sampled_nodes_per_s": round(sum(sampled) / train_s, 1),
        "mean_subgraph_nodes": round(sum(sampled) / max(1, len(sampled)), 1),
        "peak_rss_mib_after_build": round(mem_after_build, 1),
        "peak_rss_mib": round(peak_mib(), 1),
        "final_loss": result.metrics.get("loss") if isinstance(result.metrics, dict) else None,
        "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
    }
    print(json.dumps(report, indent=2, default=float))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2, default=float))


if __name__ == "__main__":
    main()
