"""Fine-tuning rows beside the frozen-probe rows: tabular (Adult), speech (FSDD), graph nodes (Cora).

Usage (from the repository root; one domain per process so two can share the machine)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/finetune_rows.py adult --out runs/finetune_rows/adult.json
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/finetune_rows.py fsdd  --out runs/finetune_rows/fsdd.json
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/finetune_rows.py cora  --out runs/finetune_rows/cora.json

    # evaluators only, on a checkpoint pretrained earlier with the same recipe (what docs/results.md used for
    # FSDD and Cora when the shared CPU was too loaded to pretrain again): = omnissl evaluate -o DIR CKPT 'tasks[0].eval=[...]'
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/finetune_rows.py fsdd --checkpoint runs/speech_gain/fsdd_tera_s0/checkpoints/last.pt --eval-only finetune

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
            " {name: core.finetune, label: digit, epochs: 1, seeds: 3, batch_size: 64, encoder_lr: 1.0e-4, head_lr: 1.0e-2}]",
        ],
    ),
    "cora": (
        "plugins/graph/src/omnissl_graph/configs/cora_graphmae.yaml",
        [
            "engine.epochs=300",
            "tasks[0].eval=[{name: graph.node_probe, lr: 0.01, weight_decay: 1.0e-4, epochs: 300},"
            " {name: core.finetune, epochs: 50, seeds: 3, encoder_lr: 1.0e-3, head_lr: 1.0e-2, weight_decay: 5.0e-4}]",
        ],
    ),
}


def evaluate(domain: str, checkpoint: str, only: str | None) -> int:
    """Run the recipe's evaluators (or only ``core.finetune`` / the probe) on an existing checkpoint."""
    import yaml

    from omnissl.cli import main as cli

    _, overrides = RECIPES[domain]
    evals = yaml.safe_load(next(o for o in overrides if o.startswith("tasks[0].eval=")).split("=", 1)[1])
    if only == "finetune":
        evals = [e for e in evals if e["name"] == "core.finetune"]
    elif only == "probe":
        evals = [e for e in evals if e["name"] != "core.finetune"]
    out = f"runs/finetune_rows/{domain}_eval"
    return cli(["evaluate", "-o", out, checkpoint, f"tasks[0].eval={json.dumps(evals)}"])


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
    parser.add_argument("--checkpoint", default=None, help="skip pretraining: run the evaluators on this checkpoint")
    parser.add_argument("--eval-only", choices=["finetune", "probe"], default=None, help="with --checkpoint: only these evaluators")
    parser.add_argument("overrides", nargs="*", help="extra key.path=value overrides (after the recipe's)")
    args = parser.parse_args(argv)
    if args.checkpoint:
        return evaluate(args.domain, args.checkpoint, args.eval_only)
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
