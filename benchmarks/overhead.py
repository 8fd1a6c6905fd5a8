"""Engine overhead: the omnissl engine against a bare PyTorch loop doing the same math on the toy modality.

Both loops train the same modules (toy MLP encoder, noise views, SimCLR objective) from the same initial
weights with the same optimizer, schedule and batches; the bare loop has no task sampling, metric
accumulation, non-finite tracking or checkpointing. They alternate in one process (ABAB...) so machine
noise hits both; the ratio is engine time over bare time, median over repeats.

    uv run python benchmarks/overhead.py [--steps 200] [--repeats 5] [--device cpu]

Writes benchmarks/results/overhead.json and prints a Markdown row for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from omnissl.config import load_config
from omnissl.engine import Trainer
from omnissl.schedules import lr_multiplier
from omnissl.testing.toy import toy_run_config


def make_config(steps: int, device: str, out_dir: str) -> dict:
    cfg = toy_run_config(out_dir=out_dir, steps=steps)
    task = cfg["tasks"][0]
    task["data"].update(num_samples=8192, dim=128)
    task["encoder"].update(hidden_dim=1024, output_dim=256)
    task["objective"].update(hidden_dim=1024, proj_dim=128)
    cfg["engine"].update(batch_size=512, device=device, schedule={"name": "cosine", "warmup_steps": 10})
    cfg["logging"].update(log_every=50, progress=False)
    return cfg


def engine_time(cfg: dict) -> float:
    trainer = Trainer(load_config(copy.deepcopy(cfg)))
    trainer.save_checkpoint = lambda: None  # measure the loop, not the final disk write
    sync(trainer.device)
    start = time.perf_counter()
    trainer.fit()
    sync(trainer.device)
    return time.perf_counter() - start


def bare_time(cfg: dict) -> float:
    """The same math written as a plain loop over the modules the engine would build."""
    trainer = Trainer(load_config(copy.deepcopy(cfg)))
    task, source, device = trainer.model.tasks["toy"], trainer.sources["toy"], trainer.device
    opt, steps, batch = trainer.optimizer, trainer.total_steps, cfg["engine"]["batch_size"]
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_multiplier(trainer.config.engine.schedule, steps))
    gen = torch.Generator(device=device)
    perm = torch.randperm(len(source), generator=torch.Generator().manual_seed(0)).to(device)
    per_epoch = len(source) // batch
    sync(device)
    start = time.perf_counter()
    for step in range(steps):
        i = step % per_epoch
        gen.manual_seed(step)
        out = task(source.batch(perm[i * batch : (i + 1) * batch]), gen)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sched.step()
        if (step + 1) % 50 == 0:
            out.loss.item()
    sync(device)
    return time.perf_counter() - start


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="benchmarks/results/overhead.json")
    args = parser.parse_args()
    cfg = make_config(args.steps, args.device, "/tmp/omnissl-overhead")
    engine_time(dict(cfg, engine={**cfg["engine"], "steps": 10}))  # warm-up both paths
    bare_time(dict(cfg, engine={**cfg["engine"], "steps": 10}))
    engine, bare = [], []
    for _ in range(args.repeats):
        engine.append(engine_time(cfg))
        bare.append(bare_time(cfg))
    ratios = [e / b for e, b in zip(engine, bare)]
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    result = {
        "benchmark": "engine overhead vs bare PyTorch loop (toy modality, SimCLR, batch 512, MLP 128-1024-256)",
        "device": device_name, "steps": args.steps, "repeats": args.repeats,
        "engine_s": engine, "bare_s": bare, "ratio_median": statistics.median(ratios), "ratios": ratios,
        "engine_steps_per_s": args.steps / statistics.median(engine), "bare_steps_per_s": args.steps / statistics.median(bare),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print(f"| engine overhead | {device_name} | {result['engine_steps_per_s']:.1f} steps/s | {result['bare_steps_per_s']:.1f} steps/s | {result['ratio_median']:.3f} |")


if __name__ == "__main__":
    main()
