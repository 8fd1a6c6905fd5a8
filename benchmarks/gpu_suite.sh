#!/usr/bin/env bash
# GPU suite (issue 20): omnissl against its peers on one GPU, each row a ratio measured in one run, with MFU
# where FLOPs can be counted. Budget: under 8 minutes on one H100/H200-class GPU. NOT YET RUN: no GPU has
# been available to this project's sessions; docs/benchmarks.md ("GPU path") lists what awaits this run.
#
#   bash benchmarks/gpu_suite.sh [OUT_DIR]        (default OUT_DIR: runs/gpu_suite)
#
# Rows:
#  1. VideoMAE ViT-B (16x224x224, batch 32, tube mask 0.9, bf16) vs HF VideoMAEForPreTraining, same shapes:
#     benchmarks/video_throughput.py --case vit-b (alternating A/B steps in one process).
#  2. HuBERT-base-shaped (12 x 768, batch 32 x 4 s at 16 kHz, bf16, regional compile) via `omnissl bench`
#     vs torchaudio's hubert_pretrain_base at the same batch (benchmarks/hubert_base_vs_torchaudio.py).
#  3. GraphMAE on Cora, the paper's 1500 epochs: wall time of `omnissl pretrain` (probe included), and
#     `omnissl bench` for TFLOP/s and MFU.
#  4. LightGCN on MovieLens: `omnissl bench`; RecBole's LightGCN only if `recbole` imports (it is not a
#     dependency of this project; when absent the row says so and reports omnissl alone).
# Writes OUT_DIR/*.json and OUT_DIR/summary.md (the rows for docs/benchmarks.md, device named).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/gpu_suite}
mkdir -p "$OUT"
PY=${PYTHON:-.venv/bin/python}
export OMNISSL_DATA=${OMNISSL_DATA:-../shared/data}
SUITE_START=$(date +%s)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/device.txt"

echo "== 1. VideoMAE ViT-B vs HF (budget ~2 min)"
timeout 240 $PY benchmarks/video_throughput.py --case vit-b --device cuda --steps 10 --repeats 3 --skip-decode --out "$OUT/video.json" \
  || echo "video row failed (exit $?)" | tee -a "$OUT/failures.txt"

echo "== 2. HuBERT-base-shaped vs torchaudio hubert_pretrain_base (budget ~2 min)"
timeout 150 $PY -m omnissl.cli bench benchmarks/gpu_suite_hubert_base.yaml --steps 20 --warmup 5 --device cuda --json "$OUT/hubert_omnissl.json" \
  || echo "hubert omnissl row failed (exit $?)" | tee -a "$OUT/failures.txt"
timeout 120 $PY benchmarks/hubert_base_vs_torchaudio.py --device cuda --batch 32 --seconds 4 --steps 20 --json "$OUT/hubert_torchaudio.json" \
  || echo "hubert torchaudio row failed (exit $?)" | tee -a "$OUT/failures.txt"

echo "== 3. GraphMAE Cora, 1500 epochs wall time (budget ~1.5 min)"
t0=$(date +%s.%N)
timeout 150 $PY -m omnissl.cli pretrain plugins/graph/src/omnissl_graph/configs/cora_graphmae.yaml engine.device=cuda logging.out_dir="$OUT/cora_graphmae" logging.progress=false --force-out-dir \
  || echo "graphmae pretrain failed (exit $?)" | tee -a "$OUT/failures.txt"
t1=$(date +%s.%N)
$PY -c "import json, sys; json.dump({'wall_s': float(sys.argv[2]) - float(sys.argv[1])}, open(sys.argv[3], 'w'))" "$t0" "$t1" "$OUT/cora_graphmae_wall.json"
timeout 60 $PY -m omnissl.cli bench plugins/graph/src/omnissl_graph/configs/cora_graphmae.yaml --steps 50 --warmup 10 --device cuda --json "$OUT/cora_graphmae_bench.json" \
  || echo "graphmae bench failed (exit $?)" | tee -a "$OUT/failures.txt"

echo "== 4. LightGCN MovieLens (budget ~1 min)"
timeout 60 $PY -m omnissl.cli bench plugins/recsys/src/omnissl_recsys/configs/movielens_lightgcn.yaml --steps 50 --warmup 10 --device cuda --json "$OUT/lightgcn_omnissl.json" \
  || echo "lightgcn bench failed (exit $?)" | tee -a "$OUT/failures.txt"
if $PY -c "import recbole" 2>/dev/null; then
  echo "recbole is installed, but no RecBole runner is written yet: add it here before quoting a ratio" | tee -a "$OUT/failures.txt"
else
  echo "RecBole not installed: the LightGCN row reports omnissl alone" | tee "$OUT/recbole.txt"
fi

$PY - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
def load(name):
    p = out / name
    return json.loads(p.read_text()) if p.is_file() else None
device = (out / "device.txt").read_text().strip()
rows = [f"GPU suite on {device}", "", "| row | omnissl | peer | ratio | omnissl MFU | peer MFU |", "|---|---|---|---|---|---|"]
fmt = lambda v, f="{:.1%}": f.format(v) if isinstance(v, (int, float)) else "n/a"
video = load("video_vit-b.json")  # video_throughput.py appends the case to the name
if video:
    s = video["step"]
    rows.append(f"| VideoMAE ViT-B 16x224x224 b32, clips/s | {s['ours_clips_per_s']:.1f} | {s['hf_clips_per_s']:.1f} (HF) | "
                f"{s['ours_clips_per_s'] / s['hf_clips_per_s']:.2f}x | {fmt(s.get('ours_mfu'))} | {fmt(s.get('hf_mfu'))} |")
ours, peer = load("hubert_omnissl.json"), load("hubert_torchaudio.json")
if ours and peer:
    rows.append(f"| HuBERT-base 32x4 s, samples/s | {ours['samples_per_s']:.1f} | {peer['samples_per_s']:.1f} | "
                f"{ours['samples_per_s'] / peer['samples_per_s']:.2f}x | {fmt(ours.get('mfu'))} | {fmt(peer.get('mfu'))} |")
wall, bench = load("cora_graphmae_wall.json"), load("cora_graphmae_bench.json")
if wall:
    rows.append(f"| GraphMAE Cora 1500 epochs, wall s | {wall['wall_s']:.1f} | | | {fmt((bench or {}).get('mfu'))} | |")
lgcn = load("lightgcn_omnissl.json")
if lgcn:
    rows.append(f"| LightGCN MovieLens, steps/s | {lgcn['steps_per_s']:.1f} | RecBole not run | | {fmt(lgcn.get('mfu'))} | |")
(out / "summary.md").write_text("\n".join(rows) + "\n")
print("\n".join(rows))
PY
echo "suite wall time: $(( $(date +%s) - SUITE_START )) s (budget 480 s); failures: $(cat "$OUT/failures.txt" 2>/dev/null | wc -l)"
