"""XSimGCL's cost per training step against LightGCN + BPR's, on MovieLens (latest-small, ~100k ratings).

XSimGCL (Yu et al., TKDE 2023) is meant to cost about what LightGCN does: one propagation, the contrast
taken between the final embeddings and one layer of that same propagation. This script times the same
training step (views, forward, backward, Adam update) for ``recsys.lightgcn`` + ``recsys.bpr`` and for
``recsys.lightgcn`` + ``recsys.xsimgcl`` with the configs' settings, and prints process CPU time and wall
time per step and their ratio. ``--profile`` also prints the top operators of each step
(``torch.profiler``), which is how the cost was located.

Usage (from the repository root)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/recsys_xsimgcl_cost.py [--steps 40] [--batch 2048] [--profile]

On a shared CPU, process CPU time is the figure to read (contention inflates wall time, not CPU time).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from omnissl.specs import BuildContext
from omnissl_recsys.datasets import MovieLensConfig, load_movielens
from omnissl_recsys.encoders import LightGCNConfig, build_lightgcn
from omnissl_recsys.objectives import BPRConfig, XSimGCLConfig, build_bpr, build_xsimgcl
from omnissl_recsys.views import EmbeddingNoiseConfig, NegativesConfig, build_embedding_noise, build_negatives

DATA = Path(os.environ.get("OMNISSL_DATA", "../shared/data")) / "recsys" / "movielens-latest-small"


def build(method: str, source, device: torch.device):
    ctx = BuildContext(data=source, seed=0)
    encoder = build_lightgcn(LightGCNConfig(dim=64, num_layers=3, include_ego=method == "lightgcn"), ctx).to(device)
    ctx = BuildContext(data=source, encoder=encoder, seed=0)
    if method == "lightgcn":  # plugins/recsys/src/omnissl_recsys/configs/movielens_lightgcn.yaml
        views, objective = build_negatives(NegativesConfig(num_negatives=1), ctx), build_bpr(BPRConfig(reg=1e-4), ctx)
    else:  # plugins/recsys/src/omnissl_recsys/configs/movielens_xsimgcl.yaml
        views = build_embedding_noise(EmbeddingNoiseConfig(eps=0.2, num_views=1, num_negatives=1), ctx)
        objective = build_xsimgcl(XSimGCLConfig(reg=1e-4, ssl_weight=0.02, temperature=0.2, layer=1), ctx)
    params = list(encoder.parameters()) + list(objective.parameters())
    return encoder, views.to(device), objective.to(device), torch.optim.Adam(params, lr=5e-3)


def time_steps(method: str, source, device, steps: int, batch: int, profile: bool) -> dict[str, float]:
    encoder, views, objective, opt = build(method, source, device)
    generator = torch.Generator(device=device).manual_seed(0)
    n = len(source)

    def step() -> None:
        idx = torch.randint(n, (batch,), generator=generator, device=device)
        v = views(source.batch(idx), generator)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = objective(encoder, v).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):  # warm-up
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    out = {"cpu_ms_per_step": 1e3 * (time.process_time() - cpu0) / steps, "wall_ms_per_step": 1e3 * (time.perf_counter() - wall0) / steps}
    if profile:
        with torch.profiler.profile() as prof:
            for _ in range(5):
                step()
        print(f"--- {method}: top operators over 5 steps ---")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--out", default="runs/recsys/xsimgcl_cost.json")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    source = load_movielens(MovieLensConfig(path=str(DATA), threshold=4.0, split="random", val_frac=0.1, test_frac=0.2)).to(device)
    print(source.describe())
    result = {m: time_steps(m, source, device, args.steps, args.batch, args.profile) for m in ("lightgcn", "xsimgcl")}
    for unit in ("cpu_ms_per_step", "wall_ms_per_step"):
        result[f"ratio_{unit}"] = result["xsimgcl"][unit] / result["lightgcn"][unit]
    result.update(device=str(device), threads=torch.get_num_threads(), steps=args.steps, batch=args.batch)
    print(json.dumps(result, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
