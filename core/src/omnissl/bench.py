"""One throughput harness for any run config: ``omnissl bench CONFIG [--steps N] [--warmup W] [--device D]``.

It trains the config's own tasks through the real :class:`~omnissl.engine.Trainer` (the same step, views on
the device, autocast, compile and strategy as ``omnissl pretrain``) for ``warmup + steps`` steps with the
log interval set to ``warmup`` (so the measurement pays only the one host sync per interval a run pays),
no evaluators and no collapse monitor, in a temporary folder unless ``--out`` names one. It then reads the
accounting fields (:mod:`omnissl.accounting`) of the intervals after the warm-up (which holds compilation
and the first allocations) and reports:

- ``samples_per_s``, ``steps_per_s`` and ``step_time_s``;
- ``data_wait_fraction``: the host's time getting batches over wall time;
- ``tflops`` and ``mfu`` (MFU only where a peak is known: a listed CUDA device or ``engine.peak_tflops``);
- ``peak_memory_gb``: CUDA max allocated, or the process's peak resident set on a CPU;

prints them and writes them as JSON (``--json``, default ``bench.json`` in the run folder).

Example::

    omnissl bench plugins/graph/src/omnissl_graph/configs/cora_graphmae.yaml --steps 50 --device cuda --json cora.json
"""

from __future__ import annotations

import json
import math
import platform
import tempfile
from pathlib import Path
from typing import Any

import torch

from omnissl.errors import OmnisslError
from omnissl.plugins import PluginManager, get_plugin_manager


def device_name(device: torch.device) -> str:
    """What the run ran on, in words: the CUDA device's name, or the CPU's with its thread count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"


def _windows(metrics_file: Path, after_step: int) -> list[dict[str, float]]:
    lines = [json.loads(line) for line in metrics_file.read_text().splitlines() if line.strip()]
    return [m for m in lines if "step_time_s" in m and m["step"] > after_step]


def summarize(windows: list[dict[str, float]], steps: list[int]) -> dict[str, float]:
    """Time-weighted means of the accounting fields over log ``windows`` of ``steps[i]`` steps each."""
    times = [w["step_time_s"] * n for w, n in zip(windows, steps)]
    total = sum(times)
    out: dict[str, float] = {
        "step_time_s": total / sum(steps),
        "steps_per_s": sum(steps) / total,
        "samples_per_s": sum(w["samples_per_s"] * t for w, t in zip(windows, times)) / total,
        "data_wait_fraction": sum(w["data_wait_fraction"] * t for w, t in zip(windows, times)) / total,
        "peak_memory_gb": max(w["peak_memory_gb"] for w in windows),
    }
    for key in ("tflops", "mfu"):
        if all(key in w for w in windows):
            out[key] = sum(w[key] * t for w, t in zip(windows, times)) / total
    return out


def run_bench(
    config: str | Path | dict,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    steps: int = 20,
    warmup: int = 5,
    device: str | None = None,
    out_dir: str | Path | None = None,
    json_path: str | Path | None = None,
    pm: PluginManager | None = None,
) -> dict[str, Any]:
    """Train ``config`` for ``warmup + steps`` steps and return (and write) its throughput summary."""
    from omnissl.config import load_config, load_yaml
    from omnissl.engine import Trainer

    if steps < 1 or warmup < 1:
        raise OmnisslError(f"bench needs --steps >= 1 and --warmup >= 1 (got steps={steps}, warmup={warmup})")
    pm = pm or get_plugin_manager()
    raw = load_yaml(config) if isinstance(config, (str, Path)) else config
    windows = math.ceil(steps / warmup)
    total = warmup * (1 + windows)
    temp = tempfile.TemporaryDirectory(prefix="omnissl-bench-") if out_dir is None else None
    folder = Path(out_dir) if out_dir is not None else Path(temp.name)
    forced = [
        f"engine.steps={total}", f"logging.log_every={warmup}", f"engine.monitor_every={10**9}",
        "eval.at_end=false", "eval.every=null", f"logging.out_dir={folder}", "logging.progress=false",
    ]
    if "epochs" in (raw.get("engine") or {}):
        forced.append("engine.epochs=null")
    if device is not None:
        forced.append(f"engine.device={device}")
    try:
        cfg = load_config(config, [*overrides, *forced], pm)
        trainer = Trainer(cfg, pm)
        trainer.fit(force_out_dir=True)
        measured = _windows(folder / "metrics.jsonl", after_step=warmup)
        summary = summarize(measured, [warmup] * len(measured))
        result = {
            "config": str(config) if isinstance(config, (str, Path)) else "<mapping>",
            "overrides": list(overrides),
            "device": device_name(trainer.device),
            "precision": str(trainer.autocast_dtype or "fp32").removeprefix("torch."),
            "compile": cfg.engine.compile,
            "strategy": cfg.engine.strategy,
            "processes": trainer.world,
            "warmup_steps": warmup,
            "measured_steps": warmup * len(measured),
            "flops_per_batch": dict(trainer.accounting.flops),  # task -> one micro-batch's forward + backward
            "peak_tflops": trainer.accounting.peak_tflops,
            **summary,
        }
        target = Path(json_path) if json_path is not None else (folder / "bench.json" if temp is None else None)
        if target is not None and trainer.rank == 0:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(result, indent=2))
        return result
    finally:
        if temp is not None:
            temp.cleanup()


def format_result(result: dict[str, Any]) -> str:
    """The summary as a few readable lines for the terminal."""
    mfu = f"{result['mfu']:.1%}" if "mfu" in result else "n/a (no known peak; set engine.peak_tflops)"
    tflops = f"{result['tflops']:.3f}" if "tflops" in result else "n/a (FLOPs not counted)"
    return "\n".join([
        f"{result['config']} on {result['device']} ({result['precision']}, compile={result['compile']}, {result['processes']} process(es))",
        f"  samples/s      {result['samples_per_s']:.1f}",
        f"  step time      {result['step_time_s'] * 1e3:.2f} ms  ({result['measured_steps']} steps after {result['warmup_steps']} warm-up)",
        f"  data wait      {result['data_wait_fraction']:.1%} of wall time",
        f"  TFLOP/s        {tflops}",
        f"  MFU            {mfu}",
        f"  peak memory    {result['peak_memory_gb']:.3f} GB",
    ])
