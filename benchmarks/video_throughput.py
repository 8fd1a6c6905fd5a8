"""Video throughput: omnissl's VideoMAE step against HF transformers' VideoMAEForPreTraining, and decoding.

1. ``step``: one VideoMAE training step (tube mask, encoder on visible tubes, decoder, normalised-pixel
   MSE, backward, AdamW) in omnissl (``video.vit`` + ``video.videomae``) and in transformers
   (``VideoMAEForPreTraining``, same shapes, same widths, same mask ratio, same optimizer), alternating in
   one process (ABAB...) so machine noise hits both. The ratio is omnissl's median step time over HF's.
   On CPU with a small ViT by default; ``--case vit-b`` runs VideoMAE's ViT-B (16x224x224, batch 32,
   bf16 autocast, tube mask 0.9) on a GPU and prints clips/s and MFU (model FLOPs counted analytically,
   3x the forward for training, against the device's dense bf16 peak).
2. ``decode``: clips/s per worker decoding real files written with PyAV (``video.folder``'s ``batch``: 16
   frames every 4, short side to 224 then crop, as VideoMAE's Kinetics recipe), one process.

    uv run python benchmarks/video_throughput.py [--case small|vit-b] [--steps 10] [--repeats 5] [--skip-decode]

Writes benchmarks/results/video_throughput.json and prints Markdown rows for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from omnissl.nn import TransformerTrunk, TrunkConfig, gather_tokens
from omnissl_video.datasets import VideoFolderConfig, video_folder
from omnissl_video.decoding import write_video
from omnissl_video.encoders import VideoViT
from omnissl_video.hf import to_hf
from omnissl_video.objectives.decoder import MAEDecoder, normalized_patch_targets
from omnissl_video.views import tube_mask

CASES = {
    # a small ViT that a CPU steps through in well under a second
    "small": dict(frames=8, size=64, patch=16, tubelet=2, dim=192, depth=4, heads=3, dec_dim=96, dec_depth=2, dec_heads=3, batch=8, ratio=0.9),
    # VideoMAE ViT-B pretraining: 16x224x224, 2x16x16 tubes, decoder 384 wide x 4, tube mask 0.9
    "vit-b": dict(frames=16, size=224, patch=16, tubelet=2, dim=768, depth=12, heads=12, dec_dim=384, dec_depth=4, dec_heads=6, batch=32, ratio=0.9),
}
# dense bf16 peak FLOP/s by device name (NVIDIA data sheets)
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "RTX 4090": 165e12}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(case: dict, device: torch.device, seed: int = 0):
    torch.manual_seed(seed)
    trunk = TransformerTrunk(TrunkConfig(dim=case["dim"], depth=case["depth"], heads=case["heads"]))
    encoder = VideoViT(3, case["frames"], case["size"], case["patch"], case["tubelet"], trunk)
    decoder = MAEDecoder(case["dim"], encoder.patch_dim, encoder.num_tokens, dim=case["dec_dim"], depth=case["dec_depth"], heads=case["dec_heads"])
    hf = to_hf(encoder, decoder).train()  # the same initial weights in transformers' model
    return encoder.to(device).train(), decoder.to(device).train(), hf.to(device)


def training_flops(case: dict) -> float:
    """Model FLOPs of one training step (3x the forward's matmul FLOPs), VideoMAE's encoder-on-visible design."""
    n = (case["frames"] // case["tubelet"]) * (case["size"] // case["patch"]) ** 2
    area = (case["size"] // case["patch"]) ** 2
    visible = (case["frames"] // case["tubelet"]) * (area - round(case["ratio"] * area))
    patch_dim = 3 * case["tubelet"] * case["patch"] ** 2

    def blocks(tokens: int, d: int, depth: int) -> float:
        return depth * (24 * tokens * d * d + 4 * tokens * tokens * d)

    forward = 2 * n * patch_dim * case["dim"] + blocks(visible, case["dim"], case["depth"])
    forward += 2 * visible * case["dim"] * case["dec_dim"] + blocks(n, case["dec_dim"], case["dec_depth"]) + 2 * (n - visible) * case["dec_dim"] * patch_dim
    return 3.0 * forward * case["batch"]


def step_times(case: dict, device: torch.device, steps: int, repeats: int, bf16: bool) -> dict:
    encoder, decoder, hf = build(case, device)
    ours_opt = torch.optim.AdamW(list(encoder.parameters()) + list(decoder.parameters()), lr=1e-4, fused=device.type == "cuda")
    hf_opt = torch.optim.AdamW(hf.parameters(), lr=1e-4, fused=device.type == "cuda")
    gen = torch.Generator(device=device).manual_seed(0)
    clips = torch.randn(case["batch"], 3, case["frames"], case["size"], case["size"], device=device)
    grid = (case["frames"] // case["tubelet"], case["size"] // case["patch"], case["size"] // case["patch"])
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)

    def ours_step():
        info = tube_mask(clips.shape[0], grid, case["ratio"], gen, device)
        with autocast:
            tokens = encoder(clips, keep=info["keep"]).tokens
            prediction = decoder(tokens, info["keep"], info["masked"])
            target = gather_tokens(normalized_patch_targets(clips, case["tubelet"], case["patch"]), info["masked"])
            loss = F.mse_loss(prediction.float(), target)
        loss.backward()
        ours_opt.step()
        ours_opt.zero_grad(set_to_none=True)

    def hf_step():
        info = tube_mask(clips.shape[0], grid, case["ratio"], gen, device)
        with autocast:
            loss = hf(clips.transpose(1, 2), bool_masked_pos=info["mask"]).loss
        loss.backward()
        hf_opt.step()
        hf_opt.zero_grad(set_to_none=True)

    def timed(fn) -> float:
        sync(device)
        start = time.perf_counter()
        for _ in range(steps):
            fn()
        sync(device)
        return (time.perf_counter() - start) / steps

    for fn in (ours_step, hf_step):  # warm-up: allocator, kernels, first-call overheads
        timed(fn)
    ours, theirs = [], []
    for _ in range(repeats):
        ours.append(timed(ours_step))
        theirs.append(timed(hf_step))
    t_ours, t_hf = statistics.median(ours), statistics.median(theirs)
    out = {
        "ours_step_s": t_ours, "hf_step_s": t_hf, "ratio": t_ours / t_hf,
        "ours_clips_per_s": case["batch"] / t_ours, "hf_clips_per_s": case["batch"] / t_hf, "ratios": [a / b for a, b in zip(ours, theirs)],
    }
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        peak = next((v for k, v in PEAK_BF16.items() if k in name), None)
        flops = training_flops(case)
        out.update(device_name=name, training_tflops_per_step=flops / 1e12)
        if peak:
            out.update(ours_mfu=flops / t_ours / peak, hf_mfu=flops / t_hf / peak, peak_tflops=peak / 1e12)
    return out


def decode_throughput(num_files: int, frames: int, width: int, height: int) -> dict:
    """Clips/s of ``video.folder`` training batches, one process (= one loader worker)."""
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(num_files):
            # smooth moving content (lossy codecs spend longer on noise than on real footage)
            x = np.linspace(0, 4 * np.pi, width)[None, None, :] + np.linspace(0, 2 * np.pi, height)[None, :, None]
            phase = np.arange(frames)[:, None, None] * 0.2 + rng.uniform(0, 6)
            video = ((np.sin(x + phase)[..., None] * [0.5, 0.3, 0.2] + 0.5) * 255).astype(np.uint8)
            write_video(Path(tmp) / f"clip{i}.mp4", video)
        source = video_folder(VideoFolderConfig(path=tmp, num_frames=16, stride=4, size=224))
        source.batch(torch.arange(2))  # warm-up
        start = time.perf_counter()
        clips = 0
        for first in range(0, len(source), 4):
            clips += source.batch(torch.arange(first, min(first + 4, len(source)))).shape[0]
        elapsed = time.perf_counter() - start
    return {"files": num_files, "frames_per_file": frames, "resolution": f"{width}x{height}", "codec": "mpeg4 (mp4)",
            "clip": "16 frames every 4, short side 224, 224 crop", "clips_per_s_per_worker": clips / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", choices=sorted(CASES), default="small")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--skip-decode", action="store_true")
    parser.add_argument("--decode-files", type=int, default=12)
    parser.add_argument("--decode-frames", type=int, default=300, help="frames per written file (300: a 10 s clip at 30 fps, Kinetics-like)")
    parser.add_argument("--out", default="benchmarks/results/video_throughput.json")
    args = parser.parse_args()
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else ("cpu" if args.device == "auto" else args.device))
    if args.case == "vit-b" and device.type != "cuda":
        raise SystemExit("the vit-b case (16x224x224, batch 32, bf16) is a GPU measurement; run it where CUDA is available")
    case = CASES[args.case]
    result = {"case": args.case, "shapes": case, "device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
              "machine": platform.processor() or platform.machine()}
    result["step"] = step_times(case, device, args.steps, args.repeats, bf16=device.type == "cuda")
    if not args.skip_decode:
        result["decode"] = decode_throughput(args.decode_files, args.decode_frames, 320, 240)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    path = out.with_name(f"{out.stem}_{args.case}{out.suffix}")
    path.write_text(json.dumps(result, indent=2))
    s = result["step"]
    print(json.dumps(result, indent=2))
    print(f"| VideoMAE step, {args.case} ({device}) | omnissl {s['ours_step_s'] * 1e3:.1f} ms ({s['ours_clips_per_s']:.1f} clips/s) | "
          f"HF {s['hf_step_s'] * 1e3:.1f} ms ({s['hf_clips_per_s']:.1f} clips/s) | ratio {s['ratio']:.2f} |")
    if "ours_mfu" in s:
        print(f"| MFU ({s['device_name']}) | omnissl {100 * s['ours_mfu']:.1f}% | HF {100 * s['hf_mfu']:.1f}% |")
    if "decode" in result:
        print(f"| decode (PyAV, 1 worker) | {result['decode']['clips_per_s_per_worker']:.2f} clips/s |")


if __name__ == "__main__":
    main()
