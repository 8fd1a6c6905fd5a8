"""Pretraining throughput of the speech objectives: seconds of audio processed per second of wall time.

Each case runs the real training step (views on the device, objective forward, backward, AdamW step) on
generated utterances (``speech.synthetic``, 0.5-1.5 s at 8 kHz, batch 16) after warm-up steps, and
reports audio seconds per wall-clock second. CPU by default; ``--device cuda`` where a GPU exists.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/speech_throughput.py --steps 20 --json runs/bench/speech.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from omnissl.device import move_to_device
from omnissl.plugins import PluginManager
from omnissl.specs import BuildContext

CASES = [
    ("speech.tera", "speech.frame_transformer", "speech.tera_alteration", {}),
    ("speech.wav2vec2", "speech.wav2vec2", "speech.span_masking", {"num_negatives": 20, "entries": 64}),
    ("speech.hubert", "speech.frame_transformer", "speech.span_masking", {"num_clusters": 50, "max_frames": 5000}),
    ("speech.w2v_bert", "speech.frame_transformer", "speech.span_masking", {"num_negatives": 20, "entries": 64}),
]


def bench(objective: str, encoder: str, views: str, params: dict, source, device, steps: int, warmup: int, batch_size: int) -> dict:
    registry = PluginManager().registry
    torch.manual_seed(0)
    ctx = BuildContext(data=source)
    enc = registry.get("encoders", encoder).build({"dim": 128, "depth": 3}, ctx).to(device)
    ctx.encoder = enc
    view = registry.get("view_generators", views).build({"span": 5} if views == "speech.span_masking" else {}, ctx).to(device)
    obj = registry.get("objectives", objective).build(params, ctx).to(device)
    opt = torch.optim.AdamW([p for m in (enc, obj) for p in m.parameters() if p.requires_grad], lr=1e-3)
    gen = torch.Generator(device=device).manual_seed(0)
    order = torch.Generator().manual_seed(1)
    audio_seconds, elapsed = 0.0, 0.0
    for step in range(warmup + steps):
        idx = torch.randint(len(source), (batch_size,), generator=order).to(device)
        batch = move_to_device(source.batch(idx), device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = obj(enc, view(batch, gen))
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step >= warmup:
            elapsed += time.perf_counter() - start
            audio_seconds += float(source.wave_lengths[idx].sum()) / source.sample_rate
    return {"objective": objective, "encoder": encoder, "audio_s_per_s": audio_seconds / elapsed, "step_ms": 1000 * elapsed / steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    from omnissl_speech.datasets import SyntheticConfig, synthetic_source

    device = torch.device(args.device)
    source = synthetic_source(SyntheticConfig(num_utterances=128, min_seconds=0.5, max_seconds_generated=1.5)).to(device)
    rows = [bench(*case, source, device, args.steps, args.warmup, args.batch_size) for case in CASES]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    print(f"device: {name}; batch {args.batch_size}, dim 128, depth 3, 8 kHz audio 0.5-1.5 s\n")
    print("| objective | encoder | audio s / s | step (ms) |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['objective']} | {r['encoder']} | {r['audio_s_per_s']:.1f} | {r['step_ms']:.0f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"device": name, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
