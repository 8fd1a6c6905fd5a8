"""VesselMNIST3D quality run: pretrain with a shipped medical config over several seeds and collect the AUC probe.

Each seed is one ``omnissl pretrain`` run of the config (``seed=<s>``, its own ``out_dir``); the run's
``medical.auc_probe`` reports, from that same run, the frozen encoder, a random encoder of the same
architecture, the raw voxels (7³ average pool) and the encoder trained from scratch with the labels. This
script gathers the test ROC-AUC and balanced accuracy per representation and head over the seeds and prints
a Markdown table beside the MedMNIST v2 paper's supervised 3-D rows.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/medical_quality.py --config vesselmnist3d_mae3d.yaml \\
        --seeds 0 1 2 --json benchmarks/results/medical_quality_mae3d.json

Overrides after ``--`` go to every run (``-- engine.steps=100``). Seeds can run as separate processes
(``--seeds 1``, ``--seeds 2`` in parallel); ``--collect`` then reads every seed's ``evals.jsonl`` from
``--out`` and prints the table without training.
"""

from __future__ import annotations

import argparse
import json
import time
from importlib.resources import files
from pathlib import Path

import numpy as np

from omnissl.engine import run_config

# MedMNIST v2 (Yang et al., Scientific Data 2023, doi:10.1038/s41597-022-01721-8), 3-D benchmark table,
# VesselMNIST3D column (test AUC, ACC). NOT verified against the paper's text: the search tools reached the
# paper's abstract and the official training script (MedMNIST/experiments, MedMNIST3D/train_and_eval_pytorch.py:
# Adam 1e-3, batch 32, 100 epochs, x0.1 at epochs 50 and 75, model chosen on val AUC) but not the table; one
# third-party summary agrees on ~0.87 for ResNet-18+3D and ~0.93 for the best (ACS). See docs/results.md.
PAPER = {
    "ResNet-18 + 2.5D": (0.748, 0.846), "ResNet-18 + 3D": (0.874, 0.877), "ResNet-18 + ACS": (0.930, 0.928),
    "ResNet-50 + 2.5D": (0.751, 0.877), "ResNet-50 + 3D": (0.907, 0.918), "ResNet-50 + ACS": (0.912, 0.858),
    "auto-sklearn": (0.910, 0.915), "AutoKeras": (0.773, 0.894),
}


def merged(evals: dict[str, dict[str, float]]) -> dict[str, float]:
    """Metrics of every ``auc_probe*`` evaluation; those of ``auc_probe_<readout>`` get ``<readout>:`` in front."""
    out = {}
    for name, metrics in evals.items():
        if name.startswith("auc_probe"):
            prefix = name.removeprefix("auc_probe").lstrip("_")
            out.update({f"{prefix}:{k}" if prefix else k: v for k, v in metrics.items()})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="vesselmnist3d_mae3d.yaml", help="a shipped config name or a path")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default="runs/medical/quality")
    parser.add_argument("--json", default=None)
    parser.add_argument("--collect", action="store_true", help="only gather the finished runs under --out")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    path = Path(args.config)
    if not path.is_file():
        path = Path(str(files("omnissl_medical") / "configs" / args.config))
    per_seed = []
    for seed in args.seeds if args.collect else []:
        lines = (Path(args.out) / path.stem / f"seed{seed}" / "evals.jsonl").read_text().splitlines()
        records = [json.loads(line) for line in lines]
        last_step = records[-1]["step"]
        per_seed.append({"seed": seed, "wall_s": None, "metrics": merged({r["name"]: r["metrics"] for r in records if r["step"] == last_step})})
    for seed in [] if args.collect else args.seeds:
        start = time.perf_counter()
        result = run_config(path, overrides=[f"seed={seed}", f"logging.out_dir={args.out}/{path.stem}/seed{seed}", *args.overrides])
        metrics = merged({r.name: r.metrics for r in result.evals})
        per_seed.append({"seed": seed, "wall_s": time.perf_counter() - start, "metrics": metrics})
        print(f"seed {seed}: {time.perf_counter() - start:.0f} s; " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if k.endswith("/test_auc")), flush=True)
    keys = sorted({k.rsplit("/", 1)[0] for s in per_seed for k in s["metrics"] if k.endswith("/test_auc")})
    summary = {}
    lines = ["| representation / head | test ROC-AUC (mean ± std over seeds) | test balanced acc | seeds |", "|---|---|---|---|"]
    for key in keys:
        have = [s for s in per_seed if f"{key}/test_auc" in s["metrics"]]  # e.g. the supervised baseline run in one seed only
        auc = np.array([s["metrics"][f"{key}/test_auc"] for s in have])
        bacc = np.array([s["metrics"][f"{key}/test_balanced_acc"] for s in have])
        summary[key] = {"auc_mean": float(auc.mean()), "auc_std": float(auc.std(ddof=1)) if len(auc) > 1 else 0.0,
                        "balanced_acc_mean": float(bacc.mean()), "balanced_acc_std": float(bacc.std(ddof=1)) if len(bacc) > 1 else 0.0,
                        "seeds": [s["seed"] for s in have]}
        lines.append(f"| {key} | {summary[key]['auc_mean']:.3f} ± {summary[key]['auc_std']:.3f} | "
                     f"{summary[key]['balanced_acc_mean']:.3f} ± {summary[key]['balanced_acc_std']:.3f} | {len(have)} |")
    for name, (auc, acc) in PAPER.items():
        lines.append(f"| MedMNIST v2 {name} (supervised, paper, unverified) | {auc:.3f} | acc {acc:.3f} | |")
    print("\n".join(lines))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"config": str(path), "overrides": args.overrides, "seeds": per_seed, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
