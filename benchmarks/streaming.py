"""Data larger than memory: peak RSS and data-wait fraction of the lazy (streamed) paths, and the in-memory speed.

Three measurements, each training run in a fresh subprocess so its peak RSS is its own:

1. ``speech``: a generated speech corpus (source-filter vowels, :mod:`omnissl_speech.synthetic`, written as
   16 kHz 16-bit WAV files with soundfile) at 10x and 100x ``--base`` files; TERA (``speech.tera`` on
   ``speech.frame_transformer``, the shipped recipe's objective and views) pretrains ``--steps`` steps on
   each through ``speech.folder`` with ``in_memory: false``, with 0, 2 and 4 loader workers. Reported per
   run: the main process's peak RSS, the largest worker's peak RSS, and ``data_wait_fraction`` (the host
   time spent waiting for a batch over the wall time, from the engine's metrics.jsonl, mean over the log
   windows after the first, which holds the workers' start). The feature cache is built once per corpus
   in its own subprocess, whose peak RSS and time are reported too; the in-memory path at workers 0 is the
   contrast (its RSS grows with the corpus).
2. ``tabular``: a generated Parquet table (numeric and categorical columns, several row groups) at 10x and
   100x ``--table-rows``, with ``memory_budget_gb`` set below the larger one's estimate so ``auto``
   streams it; ``tabular.tjepa`` pretrains on it the same way.
3. ``fsdd``: the in-memory path's speed on FSDD (TERA, the shipped recipe's model, default data config):
   step time of this checkout ("after") and of ``--before``, a copy of the commit before streaming
   (``git archive ce5f31f core plugins | tar -x -C DIR``), alternating, ``--fsdd-repeats`` times each;
   the ratio must stay at 1 within noise.

    mkdir -p /tmp/before && git archive ce5f31f core plugins | tar -x -C /tmp/before
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/streaming.py --before /tmp/before --json benchmarks/results/streaming_cpu.json

CPU figures; on a GPU pass ``--device cuda``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()


def _rss() -> dict[str, float]:
    """Peak RSS of this process and of its largest waited-for child (the loader workers), in MiB (Linux: KiB units)."""
    return {"rss_main_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_worker_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def _child(args: list[str], source_tree: str | None = None) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    if source_tree:  # another checkout of omnissl (e.g. the commit before streaming) ahead of the installed one
        env["PYTHONPATH"] = ":".join([f"{source_tree}/core/src"] + [str(p) for p in sorted(Path(source_tree).glob("plugins/*/src"))])
    done = subprocess.run([sys.executable, str(HERE), *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------ generation
def generate_speech(folder: Path, files: int, seed: int) -> None:
    """``files`` WAVs of 0.5-1.5 s at 16 kHz named ``{vowel}_{speaker}_{i}.wav`` (written in chunks: flat memory)."""
    import soundfile as sf
    import torch

    from omnissl_speech.synthetic import synth_corpus

    folder.mkdir(parents=True, exist_ok=True)
    if len(list(folder.glob("*.wav"))) == files:
        return
    for start in range(0, files, 200):
        n = min(200, files - start)
        waves, labels = synth_corpus(n, 16000, 0.5, 1.5, seed * 100003 + start)
        for j, wave in enumerate(waves):
            name = f"{int(labels['vowel'][j])}_{int(labels['speaker'][j])}_{start + j}.wav"
            sf.write(folder / name, (wave.clamp(-1, 1) * 32767).to(torch.int16).numpy(), 16000, subtype="PCM_16")


def generate_table(path: Path, rows: int, seed: int) -> None:
    """A Parquet table with 8 numeric and 4 categorical columns and a class target, in row groups of 20k."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.exists() and pq.ParquetFile(path).metadata.num_rows == rows:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = None
    g = np.random.default_rng(seed)
    for start in range(0, rows, 20_000):
        n = min(20_000, rows - start)
        x = g.normal(size=(n, 8))
        cols = {f"x{k}": x[:, k] for k in range(8)}
        cols.update({f"c{k}": g.choice([f"v{j}" for j in range(3 + 2 * k)], size=n) for k in range(4)})
        cols["y"] = (x[:, 0] + x[:, 1] * x[:, 2] > 0).astype(np.int64)
        table = pa.table(cols)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    writer.close()


# ------------------------------------------------------------------------------------------------ runs
def _speech_data(folder: str, in_memory) -> dict:
    return {"name": "speech.folder", "path": folder, "label_pattern": r"(?P<vowel>\d+)_(?P<speaker>\d+)_(?P<index>\d+)",
            "sample_rate": 16000, "keep_waveform": False, "in_memory": in_memory, "features": {"normalise": "global"}}


def _config(data: dict, kind: str, steps: int, workers: int, out: str) -> dict:
    if kind == "speech":
        task = {"name": "speech", "data": data, "encoder": {"name": "speech.frame_transformer", "dim": 64, "depth": 2, "heads": 4},
                "views": {"name": "speech.tera_alteration"}, "objective": {"name": "speech.tera"}}
    else:
        task = {"name": "table", "data": data, "encoder": {"name": "tabular.transformer", "dim": 32, "depth": 2, "heads": 4},
                "views": {"name": "tabular.tjepa_masking"}, "objective": {"name": "tabular.tjepa"}}
    # the collapse monitor encodes min(N, monitor_samples) samples in one batch: a fixed 128 keeps its cost
    # equal at every corpus size (its default, 512, exceeds the 10x corpus and would read as growth)
    return {"seed": 0, "tasks": [task], "engine": {"steps": steps, "batch_size": 32, "workers": workers, "device": "cpu", "monitor_samples": 128,
            "optimizer": {"name": "adamw", "lr": 1e-3}}, "eval": {"every": None, "at_end": False},
            "logging": {"out_dir": out, "log_every": max(1, steps // 5), "progress": False}}


def run_one(config: dict) -> dict:
    from omnissl.engine import run_config

    t0 = time.perf_counter()
    run_config(config, force_out_dir=True)
    wall = time.perf_counter() - t0
    lines = [json.loads(l) for l in open(Path(config["logging"]["out_dir"]) / "metrics.jsonl") if "data_wait_fraction" in l]
    later = lines[1:] or lines
    return {**_rss(), "wall_s": wall, "data_wait_fraction": statistics.mean(l["data_wait_fraction"] for l in later),
            "step_time_s": statistics.mean(l["step_time_s"] for l in later)}


def prepare(data: dict) -> dict:
    """Build (or reuse) the feature cache: the source's first pass, alone."""
    from omnissl.plugins import get_plugin_manager
    from omnissl.specs import BuildContext

    spec = get_plugin_manager().registry.get("datasets", data["name"])
    t0 = time.perf_counter()
    source = spec.build({k: v for k, v in data.items() if k != "name"}, BuildContext())
    return {**_rss(), "build_s": time.perf_counter() - t0, "items": len(source), "describe": source.describe() if hasattr(source, "describe") else ""}


def speech(args, work: Path) -> list[dict]:
    rows = []
    for scale in args.scales:
        folder = work / f"speech_x{scale}"
        generate_speech(folder, args.base * scale, seed=scale)
        lazy = _speech_data(str(folder), False)
        built = _child(["--prepare", json.dumps(lazy)])
        rows.append({"case": "speech", "scale": scale, "files": args.base * scale, "path": "lazy: cache build", "workers": args.cache_workers, **built})
        print(rows[-1], file=sys.stderr)
        for workers in args.workers:
            cfg = _config(lazy, "speech", args.steps, workers, str(work / f"run_speech_{scale}_{workers}"))
            rows.append({"case": "speech", "scale": scale, "files": args.base * scale, "path": "lazy", "workers": workers, **_child(["--run", json.dumps(cfg)])})
            print(rows[-1], file=sys.stderr)
        cfg = _config(_speech_data(str(folder), True), "speech", args.steps, 0, str(work / f"run_speech_{scale}_mem"))
        rows.append({"case": "speech", "scale": scale, "files": args.base * scale, "path": "in memory", "workers": 0, **_child(["--run", json.dumps(cfg)])})
        print(rows[-1], file=sys.stderr)
    return rows


def tabular(args, work: Path) -> list[dict]:
    rows = []
    for scale in args.scales:
        path = work / f"table_x{scale}.parquet"
        generate_table(path, args.table_rows * scale, seed=scale)
        data = {"name": "tabular.csv", "path": str(path), "target": "y", "in_memory": "auto", "memory_budget_gb": args.table_budget_gb}
        built = _child(["--prepare", json.dumps(data)])
        rows.append({"case": "tabular", "scale": scale, "rows": args.table_rows * scale, "path": "cache build", "workers": 0, **built})
        print(rows[-1], file=sys.stderr)
        for workers in args.workers:
            cfg = _config(data, "tabular", args.steps, workers, str(work / f"run_table_{scale}_{workers}"))
            rows.append({"case": "tabular", "scale": scale, "rows": args.table_rows * scale, "path": "auto", "workers": workers, **_child(["--run", json.dumps(cfg)])})
            print(rows[-1], file=sys.stderr)
    return rows


def fsdd(args, work: Path) -> list[dict]:
    """FSDD in memory with the default config (``in_memory`` left out: ``auto`` here, absent before streaming)."""
    root = os.path.abspath(os.environ.get("OMNISSL_DATA", "../shared/data"))
    data = {"name": "speech.fsdd", "path": f"{root}/speech/fsdd/recordings", "pretrain_split": "train", "keep_waveform": False,
            "features": {"normalise": "global"}}
    rows = []
    trees = [("after", None)] + ([("before", args.before)] if args.before else [])
    for repeat in range(args.fsdd_repeats):
        for label, tree in trees:
            cfg = _config(data, "speech", args.fsdd_steps, 0, str(work / f"run_fsdd_{label}"))
            cfg["tasks"][0]["encoder"].update(dim=128, depth=3)
            rows.append({"case": "fsdd", "path": label, "repeat": repeat, **_child(["--run", json.dumps(cfg)], tree)})
            print(rows[-1], file=sys.stderr)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default="/tmp/omnissl_streaming_bench", help="where corpora, caches and runs go")
    p.add_argument("--cases", nargs="+", default=["speech", "tabular", "fsdd"])
    p.add_argument("--base", type=int, default=40, help="files of the 1x speech corpus")
    p.add_argument("--scales", type=int, nargs="+", default=[10, 100])
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2, 4])
    p.add_argument("--cache-workers", type=int, default=0)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--table-rows", type=int, default=5_000, help="rows of the 1x table")
    p.add_argument("--table-budget-gb", type=float, default=0.02)
    p.add_argument("--fsdd-steps", type=int, default=60)
    p.add_argument("--fsdd-repeats", type=int, default=2)
    p.add_argument("--before", default=None, help="a checkout of the commit before streaming (git archive ce5f31f core plugins)")
    p.add_argument("--json", default=None)
    p.add_argument("--run", help=argparse.SUPPRESS)
    p.add_argument("--prepare", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.run:
        print(json.dumps(run_one(json.loads(args.run))))
        return
    if args.prepare:
        print(json.dumps(prepare(json.loads(args.prepare))))
        return
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("OMNISSL_CACHE", str(work / "cache"))
    rows = []
    for case in args.cases:
        rows += {"speech": speech, "tabular": tabular, "fsdd": fsdd}[case](args, work)
    report = {"args": {k: v for k, v in vars(args).items() if k not in ("run", "prepare")}, "threads": os.environ.get("OMP_NUM_THREADS"), "rows": rows}
    text = json.dumps(report, indent=1)
    if args.json:
        Path(args.json).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
