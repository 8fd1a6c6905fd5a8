"""torchaudio's HuBERT-base pretraining step (``torchaudio.models.hubert_pretrain_base``), timed and FLOP-counted.

The peer side of the GPU suite's speech row: batch 32 x 4 s of 16 kHz audio, 500 k-means label classes (its
second iteration), cross-entropy on the masked and unmasked logits plus 10 x the feature penalty (as
torchaudio's HuBERT recipe, ``examples/hubert/loss``), AdamW, bf16 autocast on CUDA. FLOPs of one step are
counted with ``FlopCounterMode`` (:func:`omnissl.accounting.count_step_flops`); MFU is against the device's
dense bf16 peak (:data:`omnissl.accounting.PEAK_TFLOPS`). omnissl's own HuBERT-base-shaped run is measured by
``omnissl bench`` in ``benchmarks/gpu_suite.sh``; the suite divides the two.

    .venv/bin/python benchmarks/hubert_base_vs_torchaudio.py --device cuda --steps 20 --json out.json
    .venv/bin/python benchmarks/hubert_base_vs_torchaudio.py --device cpu --batch 2 --seconds 1 --steps 1   # smoke
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from torchaudio.models import hubert_pretrain_base

from omnissl.accounting import count_step_flops, device_peak_tflops
from omnissl.bench import device_name


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = hubert_pretrain_base(num_classes=500).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4, fused=device.type == "cuda")
    samples = int(16000 * args.seconds)
    wave = torch.randn(args.batch, samples, device=device)
    labels = torch.randint(0, 500, (args.batch, samples // 320 - 1), device=device)  # 20 ms frames of the conv front end
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    def loss_fn() -> torch.Tensor:
        with amp:
            masked, unmasked, penalty = model(wave, labels)
        # torchaudio's recipe scores logits against the labels at the same (masked / unmasked) frames; with a
        # random mask the label order only changes the value, not the work, so targets are drawn to size
        tm = torch.randint(0, 500, masked.shape[:1], device=device)
        tu = torch.randint(0, 500, unmasked.shape[:1], device=device)
        return F.cross_entropy(masked.float(), tm, reduction="sum") + F.cross_entropy(unmasked.float(), tu, reduction="sum") + 10 * penalty

    flops = count_step_flops(loss_fn)
    opt.zero_grad(set_to_none=True)

    def step() -> None:
        loss_fn().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    step_time = (time.perf_counter() - start) / args.steps
    peak = device_peak_tflops(device, None)
    tflops = flops / step_time / 1e12
    result = {
        "model": "torchaudio hubert_pretrain_base", "device": device_name(device), "batch": args.batch, "seconds": args.seconds,
        "step_time_s": step_time, "samples_per_s": args.batch / step_time, "flops_per_step": flops, "tflops": tflops,
        "mfu": tflops / peak if peak else None,
        "peak_memory_gb": torch.cuda.max_memory_allocated(device) / 1e9 if device.type == "cuda" else None,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
