"""Moving-digits quality: VideoMAE, SIGMA and CrossVideoMAE against a random encoder and raw pixels.

Each run trains one shipped config (``omnissl_video/configs/moving_digits_<method>.yaml``) for ``--steps``
steps at its batch size on the CPU and ends with ``video.probe`` (linear and kNN probes on the ``digit`` and
``direction`` labels, test split of unseen digit images), which reports the trained encoder, a random
encoder of the same architecture and the raw-pixel baselines from the same run. Seeds change the
training and the random encoder; the generated data (seed 0) is the same for every run.

    OMP_NUM_THREADS=1 uv run python benchmarks/video_quality.py --methods videomae sigma crossvideomae --seeds 0 1 2

Writes one JSON per run to benchmarks/results/video_quality/ (400 steps, the shared budget) or
benchmarks/results/video_quality_<steps>steps/ (any other budget, so longer runs never overwrite the 400-step
ones; a variant made with ``--set key=value ... --tag NAME`` adds ``_NAME``) and prints the mean +- std table,
one block per method, budget and variant (``--summarise`` only prints the table from the existing JSON files).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from importlib.resources import files
from pathlib import Path

import torch

RESULTS = Path("benchmarks/results/video_quality")
REPS = ["encoder", "random encoder", "raw pixels (time mean, 8x8)", "raw pixels (4 frames, 8x8)"]


def results_dir(steps: int, tag: str = "") -> Path:
    """400 steps of the shipped config (the shared table) keep the original folder; other budgets and variants get their own."""
    return RESULTS.with_name(RESULTS.name + (f"_{steps}steps" if steps != 400 else "") + (f"_{tag}" if tag else ""))


def run(method: str, seed: int, steps: int, epochs: int, out_root: Path, extra: list[str] = (), tag: str = "") -> dict:
    from omnissl.engine import run_config

    config = files("omnissl_video") / "configs" / f"moving_digits_{method}.yaml"
    name = f"{method}_{tag}" if tag else method
    overrides = [
        f"seed={seed}", f"engine.steps={steps}", f"engine.schedule.warmup_steps={max(1, steps // 10)}",
        f"logging.out_dir={out_root / f'{name}_seed{seed}'}", "logging.progress=false", f"tasks[0].eval[0].epochs={epochs}", *extra,
    ]
    start = time.perf_counter()
    result = run_config(str(config), overrides=overrides)
    wall = time.perf_counter() - start
    (probe,) = result.evals
    record = {"method": method, "seed": seed, "steps": steps, "batch_size": 64, "wall_s": wall, "threads": torch.get_num_threads(),
              "final_loss": result.metrics.get("loss"), "metrics": probe.metrics, "overrides": overrides, "tag": tag}
    out = results_dir(steps, tag)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{method}_seed{seed}.json").write_text(json.dumps(record, indent=2))
    return record


def summarise() -> str:
    records = [json.loads(p.read_text()) for p in sorted(RESULTS.parent.glob(f"{RESULTS.name}*/*.json"))]
    lines = ["| method | representation | digit linear | digit kNN | direction linear | direction kNN | seeds |", "|---|---|---|---|---|---|---|"]
    budgets = sorted({(r["method"], r["steps"], r.get("tag", "")) for r in records},
                     key=lambda b: (("videomae", "sigma", "crossvideomae").index(b[0]), b[1], b[2]))
    for method_name, steps, tag in budgets:
        runs = [r for r in records if (r["method"], r["steps"], r.get("tag", "")) == (method_name, steps, tag)]
        method = f"{method_name} ({tag})" if tag else method_name
        for rep in REPS:
            cells = []
            for label in ("digit", "direction"):
                for probe in ("linear", "knn"):
                    vals = [100 * r["metrics"][f"{label}/{rep}/{probe}_test_acc"] for r in runs]
                    sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
                    cells.append(f"{statistics.mean(vals):.1f} ± {sd:.1f}")
            lines.append(f"| {method} | {rep} | " + " | ".join(cells) + f" | {len(runs)} |")
        cells = []
        for label in ("digit", "direction"):
            for probe in ("linear", "knn"):
                diffs = [100 * (r["metrics"][f"{label}/encoder/{probe}_test_acc"] - r["metrics"][f"{label}/random encoder/{probe}_test_acc"]) for r in runs]
                sd = statistics.stdev(diffs) if len(diffs) > 1 else 0.0
                cells.append(f"{statistics.mean(diffs):+.1f} ± {sd:.1f}")
        lines.append(f"| {method} | encoder − random encoder, same seed | " + " | ".join(cells) + f" | {len(runs)} |")
        walls = [r["wall_s"] for r in runs]
        lines.append(f"| {method} | (wall per run: {statistics.mean(walls) / 60:.1f} min, {steps} steps) | | | | | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", nargs="+", default=["videomae", "sigma", "crossvideomae"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--probe-epochs", type=int, default=20)
    parser.add_argument("--out-dir", default="/tmp/omnissl_video_quality")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="config overrides for a variant (needs --tag)")
    parser.add_argument("--tag", default="", help="name of the variant: its JSONs go to video_quality[_<steps>steps]_<tag>/")
    parser.add_argument("--summarise", action="store_true")
    args = parser.parse_args()
    if args.set and not args.tag:
        parser.error("--set changes the config: name the variant with --tag so its results do not mix with the shipped config's")
    if not args.summarise:
        for method in args.methods:
            for seed in args.seeds:
                record = run(method, seed, args.steps, args.probe_epochs, Path(args.out_dir), args.set, args.tag)
                print(f"{method} seed {seed}: {record['wall_s'] / 60:.1f} min", flush=True)
    print(summarise())


if __name__ == "__main__":
    main()
