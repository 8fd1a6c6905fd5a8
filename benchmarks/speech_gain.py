"""Does speech pretraining beat its random encoder on FSDD? Compute-matched runs and the random-encoder spread.

Every method runs its shipped FSDD config (``plugins/speech/src/omnissl_speech/configs/fsdd_<method>.yaml``) for the same number of
steps at the same batch size (32), which is the compute match: TERA, HuBERT (both iterations in the run)
and w2v-BERT share the 3-block, 128-wide context network over the same log-mel frames (w2v-BERT's are
conformer blocks with as many feed-forward weights); wav2vec 2.0 adds its conv waveform encoder. Each run's
``speech.probe`` reports the method, a random encoder of the same config and the surface features.

``--random-seeds`` then re-probes each run's final checkpoint with other run seeds: the probe's random
encoder is initialised from ``seed + 99991``, so this gives the spread of the random-encoder baseline over
several initialisations, the "seed spread" a method has to beat.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/speech_gain.py --steps 400 --methods tera,hubert,w2v_bert,wav2vec2
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/speech_gain.py --steps 400 --methods tera --random-seeds 1,2 --skip-train
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/speech_gain.py --collect --random-seeds 1,2

Runs go to ``<out>/fsdd_<method>_s<seed>/`` (``--out``, default ``runs/speech_gain``); the table (markdown) is
printed and written to ``<out>/table.md``. Each pretraining run prints its wall time (training + the probes).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OMNISSL = str(Path(sys.executable).with_name("omnissl"))
KEYS = [("digit", "linear"), ("digit", "knn"), ("speaker", "linear"), ("speaker", "knn")]


OUT = ROOT / "runs" / "speech_gain"


def out_dir(method: str, seed: int) -> Path:
    return OUT / f"fsdd_{method}_s{seed}"


def train(method: str, seed: int, steps: int) -> None:
    cmd = [
        OMNISSL, "pretrain", str(ROOT / "plugins/speech/src/omnissl_speech/configs" / f"fsdd_{method}.yaml"), f"seed={seed}", f"engine.steps={steps}",
        f"engine.schedule.warmup_steps={max(1, steps // 10)}", f"logging.out_dir={out_dir(method, seed)}", "logging.log_every=50",
        "logging.progress=false",
    ]
    print(" ".join(cmd), flush=True)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT)
    print(f"{method} seed {seed}: {steps} steps + probes in {time.perf_counter() - start:.0f} s wall time", flush=True)


def evaluate(method: str, seed: int, probe_seed: int) -> None:
    run = out_dir(method, seed)
    cmd = [OMNISSL, "evaluate", str(run / "checkpoints" / "last.pt"), f"seed={probe_seed}", "--output", str(run / f"evaluate-seed{probe_seed}")]
    print(" ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def rows(path: Path) -> dict[str, dict[tuple[str, str], float]]:
    """``{representation: {(label, probe): test accuracy %}}`` from a run's ``evals.jsonl`` (its last line)."""
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    table: dict[str, dict[tuple[str, str], float]] = {}
    for key, value in lines[-1]["metrics"].items():
        label, representation, probe = key.split("/")  # e.g. digit/random encoder/linear_test_acc
        if probe.endswith("_test_acc"):
            table.setdefault(representation, {})[(label, probe.removesuffix("_test_acc"))] = 100 * value
    return table


def main() -> None:
    global OUT
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default="tera,hubert,w2v_bert,wav2vec2")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--seeds", default="0", help="pretraining seeds")
    parser.add_argument("--random-seeds", default="", help="extra probe seeds for the random-encoder spread, e.g. 1,2")
    parser.add_argument("--skip-train", action="store_true", help="evaluate finished runs with --random-seeds, train nothing")
    parser.add_argument("--collect", action="store_true", help="only read finished runs and evaluations (train and evaluate nothing)")
    parser.add_argument("--out", type=Path, default=OUT, help="folder of the runs and table.md (default runs/speech_gain)")
    args = parser.parse_args()
    OUT = args.out.resolve()
    methods, seeds = args.methods.split(","), [int(s) for s in args.seeds.split(",")]
    extra = [int(s) for s in args.random_seeds.split(",") if s]
    if not (args.collect or args.skip_train):
        for method in methods:
            for seed in seeds:
                train(method, seed, args.steps)
    for method in methods:
        for seed in seeds:
            for probe_seed in extra:
                if not args.collect and not (out_dir(method, seed) / f"evaluate-seed{probe_seed}" / "evals.jsonl").exists():
                    evaluate(method, seed, probe_seed)

    lines = ["| run | representation | " + " | ".join(f"{label} {probe}" for label, probe in KEYS) + " |", "|---|---|" + "---|" * len(KEYS)]
    for method in methods:
        for seed in seeds:
            run = out_dir(method, seed)
            if not (run / "evals.jsonl").exists():
                lines.append(f"| {method} s{seed} | (not run) |" + " |" * len(KEYS))
                continue
            table = rows(run / "evals.jsonl")
            randoms = [table.get("random encoder", {})] + [rows(run / f"evaluate-seed{s}" / "evals.jsonl").get("random encoder", {}) for s in extra
                                                   if (run / f"evaluate-seed{s}" / "evals.jsonl").exists()]
            for name, values in table.items():
                if name == "random encoder" and len(randoms) > 1:
                    cells = []
                    for key in KEYS:
                        got = [r[key] for r in randoms if key in r]
                        mean = sum(got) / len(got)
                        std = (sum((g - mean) ** 2 for g in got) / len(got)) ** 0.5
                        cells.append(f"{mean:.1f} ± {std:.1f} ({len(got)} inits)")
                    lines.append(f"| {method} s{seed} | random | " + " | ".join(cells) + " |")
                else:
                    lines.append(f"| {method} s{seed} | {name} | " + " | ".join(f"{values.get(k, float('nan')):.1f}" for k in KEYS) + " |")
    text = "\n".join(lines)
    print(text)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "table.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
