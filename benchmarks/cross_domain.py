"""Cross-domain ablation: joint with a shared trunk, joint without sharing, each domain alone, the random encoder.

For a cross-domain config (default ``configs/cross_domain/real.yaml``) and each seed, runs

- ``shared``: the config as written (one trunk for every token encoder);
- ``separate``: the same tasks jointly, each encoder with its own trunk (``shared={}``, ``encoder.trunk=null``);
- ``alone/<task>``: each task by itself for the number of steps it got in the joint run (round robin:
  ``steps / tasks``), so every domain sees the same number of its own steps in every arm;

and prints, per domain, each probe's metrics for the pretrained encoder in every arm and for the random encoder
(read from the same runs' probe rows, which every evaluator writes beside the pretrained one). Results go to
``--out`` as ``results.json``.

Usage (CPU, 2 cores, a budget that fits: 2 seeds of 120 steps)::

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/cross_domain.py --config configs/cross_domain/quickstart.yaml \
        --steps 120 --seeds 0 1 --out /tmp/cross_domain
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml


def _tasks(config: Path) -> list[dict]:
    return yaml.safe_load(config.read_text())["tasks"]


def _run(config: Path, out_dir: Path, overrides: list[str]) -> list[dict]:
    cmd = [sys.executable, "-m", "omnissl.cli", "pretrain", str(config), f"logging.out_dir={out_dir}", "logging.progress=false", *overrides]
    if (out_dir / "evals.jsonl").is_file():  # finished before: reuse (delete the folder to rerun)
        return [json.loads(line) for line in open(out_dir / "evals.jsonl")]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return [json.loads(line) for line in open(out_dir / "evals.jsonl")]


def _token_tasks(tasks: list[dict]) -> list[int]:
    return [i for i, t in enumerate(tasks) if str(t["encoder"].get("trunk", "")).startswith("@shared.")]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=Path("configs/cross_domain/real.yaml"))
    parser.add_argument("--steps", type=int, required=True, help="steps of the joint runs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("runs/cross_domain/ablation"))
    parser.add_argument("--arms", nargs="+", default=["shared", "separate", "alone"])
    parser.add_argument("overrides", nargs="*", help="key=value overrides applied to every run")
    args = parser.parse_args(argv)
    tasks = _tasks(args.config)
    results: dict = {}
    for seed in args.seeds:
        common = [f"seed={seed}", f"engine.steps={args.steps}", *args.overrides]
        if "shared" in args.arms:
            results[f"shared/{seed}"] = _run(args.config, args.out / f"shared-s{seed}", common)
        if "separate" in args.arms:
            unshare = ["shared={}"] + [f"tasks[{i}].encoder.trunk=null" for i in _token_tasks(tasks)]
            results[f"separate/{seed}"] = _run(args.config, args.out / f"separate-s{seed}", common + unshare)
        if "alone" in args.arms:
            own_steps = max(1, args.steps // len(tasks))
            for i, task in enumerate(tasks):
                keep = [f"tasks=[{json.dumps(task)}]", f"engine.steps={own_steps}"]
                if i not in _token_tasks(tasks):
                    keep.append("shared={}")
                results[f"alone/{task['name']}/{seed}"] = _run(args.config, args.out / f"alone-{task['name']}-s{seed}", [f"seed={seed}", *args.overrides, *keep])
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    for key, evals in results.items():
        for record in evals:
            print(f"## {key} {record['name']}")
            for row in record["rows"]:
                print("   ", row)


if __name__ == "__main__":
    main()
