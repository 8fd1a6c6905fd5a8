"""Fine-tuning rows beside the frozen-probe rows: tabular (Adult), speech (FSDD), graph nodes (Cora).

Usage (from the repository root; one domain per process so two can share the machine)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/finetune_rows.py adult --out runs/finetune_rows/adult.json
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/finetune_rows.py fsdd  --out runs/finetune_rows/fsdd.json
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/finetune_rows.py cora  --out runs/finetune_rows/cora.json

Each domain is one engine run of its shipped recipe (pretraining seed 0, the budget in ``RECIPES`` sized for a
shared 2-core CPU) whose evaluators are the domain's frozen probe (with its random-encoder and surface-feature
baselines) and ``core.finetune`` (the run's encoder + a linear head, against the same fine-tuning from a
random initialisation of the same config, ``seeds`` repetitions). Both come from the same run, splits and
seeds, so the rows sit side by side. The script prints every evaluator's table and writes the metrics and
rows as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

#: domain -> (shipped config, overrides). The budgets are stated in docs/results.md beside the numbers.
RECIPES: dict[str, tuple[str, list[str]]] = {
    "adult": (
        "plugins/tabular/src/omnissl_tabular/configs/adult_tjepa.yaml",
        [
            "engine.epochs=4",
            "tasks[0].eval=[{name: tabular.probe, label: ltgt50k, seeds: 3, epochs: 12, patience: 3, mlp_hidden: 128},"
            " {name: core.finetune, label: ltgt50k, epochs: 3, seeds: 3, batch_size: 256, encoder_lr: 1.0e-4, head_lr: 1.0e-3}]",
        ],
    ),
    "fsdd": (
        "plugins/speech/src/omnissl_speech/configs/fsdd_tera.yaml",
        [
            "engine.steps=400",
            "engine.schedule.warmup_steps=40",
            "tasks[0].eval=[{name: speech.probe, labels: [digit]},"
            " {name: core.finetune, label: digit, epochs: 8, seeds: 3, batch_size: 64, encoder_lr: 1.0e-4, head_lr: 1.0e-3}]",
        ],
    ),
    "cora": (
        "plugins/graph/src/omnissl_graph/configs/cora_graphmae.yaml",
        [
            "engine.epochs=300",
            "tasks[0].eval=[{name: graph.node_probe, lr: 0.01, weight_decay: 1.0e-4, epochs: 300},"
            " {name: core.finetune, epochs: 100, seeds: 3, encoder_lr: 1.0e-3, head_lr: 1.0e-2, weight_decay: 5.0e-4}]",
        ],
    ),
}


def run(domain: str, extra: list[str]) -> dict:
    from omnissl.config import load_config
    from omnissl.engine import Trainer

    config, overrides = RECIPES[domain]
    out_dir = f"runs/finetune_rows/{domain}"
    cfg = load_config(config, ["seed=0", f"logging.out_dir={out_dir}", "logging.progress=false", *overrides, *extra])
    start = time.perf_counter()
    result = Trainer(cfg).fit()
    return {
        "config": config,
        "overrides": [*overrides, *extra],
        "seconds": time.perf_counter() - start,
        "evals": [{"name": e.name, "metrics": e.metrics, "rows": e.rows} for e in result.evals],
    }


def markdown(rows: list[dict]) -> str:
    if not rows:
        return ""
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("domain", choices=sorted(RECIPES))
    parser.add_argument("--out", default=None, help="JSON file for the metrics and table rows")
    parser.add_argument("overrides", nargs="*", help="extra key.path=value overrides (after the recipe's)")
    args = parser.parse_args(argv)
    report = run(args.domain, args.overrides)
    print(f"{args.domain}: {report['config']} {' '.join(report['overrides'])} ({report['seconds']:.0f} s)")
    for e in report["evals"]:
        print(f"\n{e['name']}\n{markdown(e['rows'])}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
