"""Cross-domain ablation: joint with a shared trunk, joint without sharing, each domain alone, the random encoder.

For a cross-domain config (default ``configs/cross_domain/real.yaml``) and each seed, runs

- ``shared``: the config as written (one trunk for every token encoder);
- ``separate``: the same tasks jointly, each encoder with its own trunk of the shared trunk's width, depth and heads
  (``shared={}``, ``encoder.trunk=null``);
- ``alone/<task>``: each task by itself for the number of steps it got in the joint run (round robin:
  ``steps / tasks``), so every domain sees the same number of its own steps in every arm;

and prints, per domain, each probe's metrics for the pretrained encoder in every arm and for the random encoder
(read from the same runs' probe rows, which every evaluator writes beside the pretrained one). Results go to
``--out`` as ``results.json``.

The overrides (and ``--preset cpu``) are applied to the config once, before the arms are derived from it, so
the ``alone`` arms train exactly the tasks of the joint runs; the derived config is written to
``--out/config.yaml``. ``--preset cpu`` shrinks ``configs/cross_domain/real.yaml`` to a 2-core CPU budget: a
2-block trunk, smaller batches and clip counts, lighter probes (linear heads, one probe seed, no supervised
baseline), and the warm-up scaled to the run. After the runs it prints one line per domain and metric: every
arm's pretrained score (mean ± std over seeds) beside the random encoder's.

Usage (CPU, 2 cores)::

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/cross_domain.py --preset cpu --steps 240 --seeds 0 1 2 \
        --out /tmp/cross_domain
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

from omnissl.config import apply_overrides

# configs/cross_domain/real.yaml on 2 shared CPU cores: task order adult, fsdd, cora, vessel, digits, movielens
CPU_PRESET = [
    "shared.trunk.depth=2",
    "tasks[0].batch_size=128",
    "tasks[0].eval=[{name: tabular.probe, heads: [linear], seeds: 1, epochs: 20}]",
    "tasks[1].eval=[{name: speech.probe, labels: [digit, speaker], probes: [linear], weight_decays: [0.0, 0.001], epochs: 20}]",
    "tasks[3].eval=[{name: medical.auc_probe, heads: [linear], seeds: 1, supervised_epochs: 0, epochs: 100}]",
    "tasks[4].data.num_clips=800",
    "tasks[4].batch_size=32",
    "tasks[4].eval=[{name: video.probe, labels: [digit, direction], probes: [linear], weight_decays: [0.0, 0.001], epochs: 20}]",
    "tasks[5].eval=[{name: recsys.ranking, ks: [10], baselines: [popularity, random]}]",
    "logging.log_every=1000",
    "engine.checkpoint.every=null",
]


SUMMARY_ONLY = False  # --summary-only: read the arms that finished, run nothing


def _run(config: Path, out_dir: Path, overrides: list[str]) -> list[dict] | None:
    cmd = [sys.executable, "-m", "omnissl.cli", "pretrain", str(config), f"logging.out_dir={out_dir}", "logging.progress=false", *overrides]
    if (out_dir / "evals.jsonl").is_file():  # finished before: reuse (delete the folder to rerun)
        return [json.loads(line) for line in open(out_dir / "evals.jsonl")]
    if SUMMARY_ONLY:
        return None
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return [json.loads(line) for line in open(out_dir / "evals.jsonl")]


def _token_tasks(tasks: list[dict]) -> list[int]:
    return [i for i, t in enumerate(tasks) if str(t["encoder"].get("trunk", "")).startswith("@shared.")]


def _summary(results: dict, tasks: list[dict]) -> list[str]:
    """One line per domain and test metric: each arm's pretrained mean ± std over seeds, then the random encoder's."""
    import statistics

    def spread(values: list[float]) -> str:
        return f"{statistics.mean(values):.4f} ± {statistics.pstdev(values):.4f} (n={len(values)})" if values else "-"

    lines = []
    for i, task in enumerate(tasks):
        runs = {"shared": [v[i] for k, v in results.items() if k.startswith("shared/")],
                "separate": [v[i] for k, v in results.items() if k.startswith("separate/")],
                "alone": [v[0] for k, v in results.items() if k.startswith(f"alone/{task['name']}/")]}
        keys = next((r["metrics"] for rs in runs.values() for r in rs), {})
        for key in sorted(keys):
            if key.endswith("_std") or not ("test" in key or "accuracy" in key or "recall" in key) or "val" in key:
                continue
            cells = [f"{arm} {spread([r['metrics'][key] for r in rs if key in r['metrics']])}" for arm, rs in runs.items()]
            lines.append(f"{task['name']:10s} {key:45s} " + " | ".join(cells))
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=Path("configs/cross_domain/real.yaml"))
    parser.add_argument("--steps", type=int, required=True, help="steps of the joint runs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("runs/cross_domain/ablation"))
    parser.add_argument("--arms", nargs="+", default=["shared", "separate", "alone"])
    parser.add_argument("--preset", choices=["cpu"], help="cpu: real.yaml shrunk to a 2-core CPU budget (see CPU_PRESET)")
    parser.add_argument("--summary-only", action="store_true", help="summarise the arms already finished in --out; run nothing")
    parser.add_argument("overrides", nargs="*", help="key=value overrides applied to the config before the arms")
    args = parser.parse_args(argv)
    global SUMMARY_ONLY
    SUMMARY_ONLY = args.summary_only
    overrides = (CPU_PRESET if args.preset == "cpu" else []) + list(args.overrides)
    data = apply_overrides(yaml.safe_load(args.config.read_text()), overrides)
    args.out.mkdir(parents=True, exist_ok=True)
    config = args.out / "config.yaml"
    if not args.summary_only:
        config.write_text(yaml.safe_dump(data, sort_keys=False))
    args.config, args.overrides = config, []
    tasks = data["tasks"]
    warmup = lambda steps: f"engine.schedule.warmup_steps={max(1, steps // 10)}"  # noqa: E731
    results: dict = {}
    for seed in args.seeds:
        common = [f"seed={seed}", f"engine.steps={args.steps}", warmup(args.steps), *args.overrides]
        if "shared" in args.arms:
            results[f"shared/{seed}"] = _run(args.config, args.out / f"shared-s{seed}", common)
        if "separate" in args.arms:
            trunk = next(iter(data["shared"].values()))  # each encoder's own trunk is shaped like the shared one
            unshare = ["shared={}"] + [f"tasks[{i}].encoder.{k}={v}" for i in _token_tasks(tasks)
                                       for k, v in [("trunk", "null"), ("dim", trunk["dim"]), ("depth", trunk["depth"]), ("heads", trunk["heads"])]]
            results[f"separate/{seed}"] = _run(args.config, args.out / f"separate-s{seed}", common + unshare)
        if "alone" in args.arms:
            own_steps = max(1, args.steps // len(tasks))
            for i, task in enumerate(tasks):
                keep = [f"tasks=[{json.dumps(task)}]", f"engine.steps={own_steps}", warmup(own_steps)]
                if i not in _token_tasks(tasks):
                    keep.append("shared={}")
                results[f"alone/{task['name']}/{seed}"] = _run(args.config, args.out / f"alone-{task['name']}-s{seed}", [f"seed={seed}", *args.overrides, *keep])
        results = {k: v for k, v in results.items() if v is not None}
        (args.out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    for key, evals in results.items():
        for record in evals:
            print(f"## {key} {record['name']}")
            for row in record["rows"]:
                print("   ", row)
    summary = _summary(results, tasks)
    (args.out / "summary.txt").write_text("\n".join(summary) + "\n")
    print("\n".join(summary))


if __name__ == "__main__":
    main()
