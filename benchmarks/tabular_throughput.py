"""Pretraining throughput of the tabular plugin: rows per second for T-JEPA, SCARF and VIME.

Times the full training step (views, objective forward, backward, AdamW step, teacher update) on an
Adult-shaped synthetic table (6 numerical + 8 categorical features with Adult's cardinalities), so it needs
no data files. Prints a Markdown table; ``--json PATH`` also writes the numbers.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/tabular_throughput.py --steps 20 --batch-size 512
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import pandas as pd
import torch

from omnissl.interfaces import Progress
from omnissl.specs import BuildContext
from omnissl_tabular.corruption import MarginalCorruptionConfig, build_marginal_corruption
from omnissl_tabular.datasets import build_source
from omnissl_tabular.encoders import TabularTransformerConfig, build_tabular_transformer
from omnissl_tabular.masking import TJEPAMaskingConfig, build_tjepa_masking
from omnissl_tabular.scarf import SCARFConfig, SCARFObjective
from omnissl_tabular.tjepa import TJEPAConfig, TJEPAObjective
from omnissl_tabular.vime import VIMEConfig, VIMEObjective

ADULT_CARDINALITIES = [8, 16, 7, 14, 6, 5, 2, 41]


def adult_shaped(rows: int, seed: int = 0):
    g = np.random.default_rng(seed)
    cols = {f"n{i}": g.normal(size=rows) for i in range(6)}
    cols.update({f"c{i}": g.integers(0, c, size=rows).astype(str) for i, c in enumerate(ADULT_CARDINALITIES)})
    cols["y"] = g.integers(0, 2, size=rows)
    frame = pd.DataFrame(cols).astype(object)
    return build_source(frame, np.arange(2, rows + 2), "synthetic", ["y"], {"train": np.arange(rows), "val": np.arange(0), "test": np.arange(0)}, task="classification")


METHODS = {
    "T-JEPA": (build_tjepa_masking, TJEPAMaskingConfig(), TJEPAObjective.build, TJEPAConfig()),
    "SCARF": (build_marginal_corruption, MarginalCorruptionConfig(rate=0.6), SCARFObjective.build, SCARFConfig()),
    "VIME": (build_marginal_corruption, MarginalCorruptionConfig(rate=0.3, mode="bernoulli", keep_clean=False), VIMEObjective.build, VIMEConfig()),
}


def measure(name: str, source, device: torch.device, batch_size: int, steps: int, warmup: int, dim: int, depth: int) -> float:
    make_views, views_cfg, make_objective, objective_cfg = METHODS[name]
    torch.manual_seed(0)
    ctx = BuildContext(data=source)
    encoder = build_tabular_transformer(TabularTransformerConfig(dim=dim, depth=depth), ctx).to(device)
    ctx.encoder = encoder
    views = make_views(views_cfg, ctx).to(device)
    objective = make_objective(objective_cfg, ctx).to(device)
    params = [p for m in (encoder, objective) for p in m.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3)
    gen = torch.Generator(device=device).manual_seed(0)
    perm = torch.randperm(len(source), device=device)
    for step in range(warmup + steps):
        if step == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        idx = perm[(step * batch_size) % (len(source) - batch_size) :][:batch_size]
        out = objective(encoder, views(source.batch(idx), gen))
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        objective.after_step(Progress(step=step + 1, total_steps=warmup + steps))
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    device = torch.device(args.device)
    source = adult_shaped(8192).to(device)
    what = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    results = {name: measure(name, source, device, args.batch_size, args.steps, args.warmup, args.dim, args.depth) for name in METHODS}
    print(f"device: {what}; encoder dim {args.dim}, depth {args.depth}; batch {args.batch_size}; {args.steps} timed steps\n")
    print("| method | pretraining rows/s |\n|---|---|")
    for name, rate in results.items():
        print(f"| {name} | {rate:,.0f} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"device": what, "args": vars(args), "rows_per_s": results}, fh, indent=2)


if __name__ == "__main__":
    main()
