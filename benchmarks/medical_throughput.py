"""Pretraining throughput of the medical objectives (volumes/s), and MAE's visible-only encoder vs all patches.

Each case runs the real training step (views on the device, objective forward, backward, AdamW step, bf16
autocast on CUDA) on VesselMNIST3D 28³ volumes when ``../shared/data`` has them (else generated 28³
volumes), batch 32, with the encoders of the shipped VesselMNIST3D configs, after warm-up steps.

All objectives are built first and their steps are interleaved round-robin in one process, so a change in
the machine's load hits every objective alike and the ratios between them (``relative_to_mae``) hold even
on a shared machine. On CPU each step's process CPU time is recorded beside its wall time: with one thread,
``cpu_volumes_per_s`` is what the step costs, whatever else the machine runs.

The MAE ratio: the same ViT (dim 192, depth 6, 343 patches) encodes a batch once with ``keep=`` (the 25%
visible patches, what ``medical.mae3d`` does) and once with every patch, forward + backward, alternating
the two in one process; the ratio of their times is reported (a ratio taken in one run).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/medical_throughput.py --steps 5 --json benchmarks/results/medical_throughput_cpu.json
    .venv/bin/python benchmarks/medical_throughput.py --device cuda --steps 50 --json benchmarks/results/medical_throughput_cuda.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import time
from pathlib import Path

import torch

from omnissl.plugins import PluginManager
from omnissl.specs import BuildContext
from omnissl.testing.data import shared_data_dir

CASES = [
    ("medical.mae3d", ("medical.vit", {"patch_size": 7, "dim": 128, "depth": 4, "heads": 4}), ("medical.patch_masking", {"patch_size": 7}),
     {"decoder_dim": 96}),
    ("medical.swin_ssl", ("medical.swin", {"embed_dim": 12}), ("medical.swin_ssl_views", {}), {}),
    ("medical.global_local_contrast", ("medical.resnet", {"layers": [1, 1, 1, 1], "widths": [16, 32, 64, 128], "stem_stride": 2}),
     ("medical.global_local_views", {}), {}),
]


def source_28(registry):
    root = shared_data_dir()
    path = root / "medical" / "vesselmnist3d" / "vesselmnist3d.npz" if root else None
    if path is not None and path.is_file():
        return registry.get("datasets", "medical.medmnist3d").build({"path": str(path)}, BuildContext()), "VesselMNIST3D 28³"
    return registry.get("datasets", "medical.synthetic").build({"num_volumes": 256, "size": 28}, BuildContext()), "generated 28³"


def autocast(device: torch.device):
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class Case:
    """One objective with its encoder, views and optimiser, stepped by :meth:`step`."""

    def __init__(self, registry, case, source, device):
        self.objective, (self.encoder_name, enc_params), (views, view_params), obj_params = case
        torch.manual_seed(0)
        ctx = BuildContext(data=source)
        self.enc = registry.get("encoders", self.encoder_name).build(enc_params, ctx).to(device)
        ctx.encoder = self.enc
        self.view = registry.get("view_generators", views).build(view_params, ctx).to(device)
        self.obj = registry.get("objectives", self.objective).build(obj_params, ctx).to(device)
        self.opt = torch.optim.AdamW([p for m in (self.enc, self.obj) for p in m.parameters() if p.requires_grad], lr=1e-4)
        self.gen = torch.Generator(device=device).manual_seed(0)
        self.order = torch.Generator().manual_seed(1)
        self.source, self.device = source, device
        self.wall, self.cpu, self.steps = 0.0, 0.0, 0

    def step(self, batch_size: int, timed: bool) -> None:
        batch = self.source.batch(torch.randint(len(self.source), (batch_size,), generator=self.order).to(self.device))
        sync(self.device)
        wall, cpu = time.perf_counter(), time.process_time()
        with autocast(self.device):
            out = self.obj(self.enc, self.view(batch, self.gen))
        out.loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        sync(self.device)
        if timed:
            self.wall += time.perf_counter() - wall
            self.cpu += time.process_time() - cpu
            self.steps += 1

    def report(self, batch_size: int) -> dict:
        params = sum(p.numel() for m in (self.enc, self.obj) for p in m.parameters())
        return {"objective": self.objective, "encoder": self.encoder_name, "volumes_per_s": self.steps * batch_size / self.wall,
                "step_ms": 1000 * self.wall / self.steps, "cpu_volumes_per_s": self.steps * batch_size / self.cpu,
                "cpu_step_ms": 1000 * self.cpu / self.steps, "parameters": params}


def bench_interleaved(registry, cases, source, device, steps: int, warmup: int, batch_size: int) -> list[dict]:
    """Every objective's step in turn (the order rotating each round), ``warmup`` untimed rounds first."""
    built = [Case(registry, case, source, device) for case in cases]
    for r in range(warmup + steps):
        for c in built[r % len(built):] + built[: r % len(built)]:
            c.step(batch_size, timed=r >= warmup)
    results = [c.report(batch_size) for c in built]
    mae = next((r for r in results if r["objective"] == "medical.mae3d"), None)
    for r in results:
        if mae is not None:
            r["relative_to_mae"] = r["volumes_per_s"] / mae["volumes_per_s"]
            r["cpu_relative_to_mae"] = r["cpu_volumes_per_s"] / mae["cpu_volumes_per_s"]
    return results


def mae_visible_ratio(registry, source, device, repeats: int, batch_size: int, mask_ratio: float = 0.75) -> dict:
    """Forward + backward of the ViT on the visible 25% (``keep=``) vs on every patch, alternating."""
    torch.manual_seed(0)
    enc = registry.get("encoders", "medical.vit").build({"patch_size": 4, "dim": 192, "depth": 6, "heads": 6}, BuildContext(data=source)).to(device)
    batch = source.batch(torch.arange(batch_size, device=device))
    n = enc.num_patches
    keep = torch.rand(batch_size, n, device=device).argsort(dim=1)[:, : round(n * (1 - mask_ratio))]
    times = {"visible": 0.0, "all": 0.0}
    cpu = {"visible": 0.0, "all": 0.0}
    for r in range(repeats + 1):
        for name, k in (("visible", keep), ("all", None)) if r % 2 == 0 else (("all", None), ("visible", keep)):
            sync(device)
            start, start_cpu = time.perf_counter(), time.process_time()
            with autocast(device):
                out = enc(batch, keep=k)
            out.pooled.float().pow(2).mean().backward()
            enc.zero_grad(set_to_none=True)
            sync(device)
            if r > 0:  # first round is warm-up
                times[name] += time.perf_counter() - start
                cpu[name] += time.process_time() - start_cpu
    return {"patches": n, "visible": keep.shape[1], "visible_ms": 1000 * times["visible"] / repeats, "all_ms": 1000 * times["all"] / repeats,
            "speedup_all_over_visible": times["all"] / times["visible"], "cpu_speedup_all_over_visible": cpu["all"] / cpu["visible"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--json", default=None)
    parser.add_argument("--objectives", nargs="*", default=None, help="only these objectives (default: all)")
    parser.add_argument("--no-ratio", action="store_true", help="skip the MAE visible-vs-all measurement")
    args = parser.parse_args()
    device = torch.device(args.device)
    registry = PluginManager().registry
    source, data_name = source_28(registry)
    source.to(device)
    cases = [c for c in CASES if args.objectives is None or c[0] in args.objectives]
    results = bench_interleaved(registry, cases, source, device, args.steps, args.warmup, args.batch_size)
    ratio = None if args.no_ratio else mae_visible_ratio(registry, source, device, max(2, args.steps), args.batch_size)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    report = {"device": str(device), "device_name": name, "threads": torch.get_num_threads(), "data": data_name,
              "batch_size": args.batch_size, "steps": args.steps, "objectives": results, "mae_encoder": ratio}
    for r in results:
        print(f"{r['objective']:32s} {r['encoder']:16s} {r['volumes_per_s']:8.2f} volumes/s ({r['cpu_volumes_per_s']:.2f} per CPU-second)  "
              f"{r['step_ms']:9.1f} ms/step  {r['parameters'] / 1e6:.2f} M params  x{r.get('cpu_relative_to_mae', float('nan')):.3f} of MAE (CPU time)")
    if ratio:
        print(f"MAE ViT encoder, forward+backward on {ratio['visible']} of {ratio['patches']} patches: {ratio['visible_ms']:.1f} ms; "
              f"all patches: {ratio['all_ms']:.1f} ms; all / visible = {ratio['speedup_all_over_visible']:.2f}x (CPU time {ratio['cpu_speedup_all_over_visible']:.2f}x)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
