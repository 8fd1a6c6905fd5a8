"""Recommender quality on MovieLens latest-small: popularity, MF-BPR, LightGCN, SGL, SimGCL, XSimGCL, two-tower
with and without its SSL task, and BM3, all on the same split in one invocation.

Each model trains with ``plugins/recsys/src/omnissl_recsys/configs/movielens_<model>.yaml`` through the engine; the ``recsys.ranking``
evaluator runs every ``eval.every`` steps on validation and test. Model selection (early stopping on
validation): the evaluation with the best ``val/recall@20`` is kept and its test metrics reported, so no
test number influences the choice. The popularity baseline is the evaluator's own (from the MF run); each
model's row is followed by its random encoder's (the same config freshly initialised, evaluated by the same
evaluator in the same run: ``random/test/...``).

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/recsys_quality.py [--models mf lightgcn ...] [--epochs N] [--seeds 0 1]

Writes ``runs/recsys/quality.json`` and prints a Markdown table (copied into ``docs/results.md``).
Skips cleanly when the data is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["mf", "lightgcn", "sgl", "simgcl", "xsimgcl", "two_tower", "two_tower_ssl", "bm3"]
LABELS = {
    "popularity": "Popularity", "mf": "MF-BPR", "lightgcn": "LightGCN", "sgl": "SGL-ED", "simgcl": "SimGCL",
    "xsimgcl": "XSimGCL", "two_tower": "Two-tower (no SSL)", "two_tower_ssl": "Two-tower + SSL (CFM)", "bm3": "BM3",
}


def data_dir() -> Path:
    return Path(os.environ.get("OMNISSL_DATA", ROOT.parent / "shared" / "data")) / "recsys" / "movielens-latest-small"


def select(evals_path: Path, key: str = "val/recall@20") -> dict:
    """The evaluation with the best validation metric (first one on ties): early stopping on validation."""
    best = None
    for line in evals_path.read_text().splitlines():
        rec = json.loads(line)
        if rec["name"] != "recsys.ranking":
            continue
        if best is None or rec["metrics"][key] > best["metrics"][key]:
            best = rec
    if best is None:
        raise RuntimeError(f"no recsys.ranking evaluation in {evals_path}")
    return best


def run_model(model: str, seed: int, extra: list[str]) -> dict:
    from omnissl.engine import run_config

    out = ROOT / "runs" / "recsys" / f"quality_{model}_s{seed}"
    if (out / "evals.jsonl").exists():
        (out / "evals.jsonl").unlink()
    overrides = [f"seed={seed}", f"logging.out_dir={out}", f"tasks[0].data.save_id_map={out / 'id_map.json'}", "logging.progress=false", *extra]
    start = time.perf_counter()
    run_config(ROOT / "plugins/recsys/src/omnissl_recsys/configs" / f"movielens_{model}.yaml", overrides=overrides)
    best = select(out / "evals.jsonl")
    return {"model": model, "seed": seed, "step": best["step"], "seconds": time.perf_counter() - start, "metrics": best["metrics"]}


def table(results: list[dict]) -> str:
    by_model: dict[str, list[dict]] = {}
    for r in results:
        by_model.setdefault(r["model"], []).append(r)
    lines = ["| model | Recall@20 | NDCG@20 | Recall@10 | NDCG@10 | val Recall@20 | best step | train s |", "|---|---|---|---|---|---|---|---|"]

    def fmt(values: list[float]) -> str:
        return f"{statistics.mean(values):.4f}" + (f" ± {statistics.stdev(values):.4f}" if len(values) > 1 else "")

    for model, runs in by_model.items():
        m = [r["metrics"] for r in runs]
        lines.append(
            f"| {LABELS.get(model, model)} | {fmt([x['test/recall@20'] for x in m])} | {fmt([x['test/ndcg@20'] for x in m])} | "
            f"{fmt([x['test/recall@10'] for x in m])} | {fmt([x['test/ndcg@10'] for x in m])} | {fmt([x['val/recall@20'] for x in m])} | "
            f"{'/'.join(str(r['step']) for r in runs)} | {statistics.mean(r['seconds'] for r in runs):.0f} |"
        )
        if all("random/test/recall@20" in x for x in m):
            lines.append(
                f"| {LABELS.get(model, model)}: random encoder | {fmt([x['random/test/recall@20'] for x in m])} | "
                f"{fmt([x['random/test/ndcg@20'] for x in m])} | {fmt([x['random/test/recall@10'] for x in m])} | "
                f"{fmt([x['random/test/ndcg@10'] for x in m])} | {fmt([x['random/val/recall@20'] for x in m])} | – | – |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=MODELS, choices=MODELS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--override", nargs="*", default=[], help="extra key=value overrides for every config")
    parser.add_argument("--out", default=str(ROOT / "runs" / "recsys" / "quality.json"))
    args = parser.parse_args(argv)
    if not (data_dir() / "ratings.csv").is_file():
        print(f"MovieLens latest-small not found under {data_dir()}; set OMNISSL_DATA. Skipping.")
        return 0
    os.environ.setdefault("OMNISSL_DATA", str(data_dir().parents[1]))
    results = []
    for seed in args.seeds:
        for model in args.models:
            r = run_model(model, seed, args.override)
            results.append(r)
            if model == "mf":  # the popularity baseline is evaluated by the same evaluator in the MF run
                pop = {k.removeprefix("popularity/"): v for k, v in r["metrics"].items() if k.startswith("popularity/")}
                results.append({"model": "popularity", "seed": seed, "step": 0, "seconds": 0.0, "metrics": pop})
            print(f"{model} seed {seed}: step {r['step']} test recall@20 {r['metrics']['test/recall@20']:.4f} ndcg@20 {r['metrics']['test/ndcg@20']:.4f}", flush=True)
    order = ["popularity", *MODELS]
    results.sort(key=lambda r: (order.index(r["model"]), r["seed"]))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
