#!/bin/sh
# The training comparison in one device call: foxgate (WebGPU) and PyTorch (CUDA) on the same
# models, weights and batch, then the markdown rows. From the bundle folder (/tmp/gpuenv/app after
# `source .gpu/boot.sh`; scripts/gpu/build.sh copies bench/torch to ./torch):
#   sh torch/run-gpu.sh OUT [T=4096] [B=8] [STEPS=8]
# Writes OUT/log.txt, gpu.txt, fixture.txt, foxgate-{foxPro,transformer}.{txt,json},
# torch-train.{txt,json} and train-vs-torch.md. Each part has its own time limit, so a slow part
# leaves the others' rows. The 125M step-0 checkpoints go to /tmp/fg-step0 (too large to bring back).
set -u
OUT=$1
T=${2:-4096}
B=${3:-8}
S=${4:-8}
P=${FG_PRESET:-125M}
STEP0=/tmp/fg-step0
mkdir -p "$OUT"
rm -rf "$STEP0"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1; date -u; cat BUILD_INFO 2>/dev/null; } > "$OUT/gpu.txt"
stamp() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$OUT/log.txt"; }

stamp "fixture: float64 structure check of the torch models against foxgate (CPU)"
{ node torch/fixture.mjs "$OUT/fixture" && timeout 60 python3 torch/train_bench.py --fixture "$OUT/fixture"; echo "rc $?"; } > "$OUT/fixture.txt" 2>&1
rm -f "$OUT"/fixture/*/model.safetensors
tail -6 "$OUT/fixture.txt"

common="bench train --device webgpu --preset $P --context $T --batch $B --steps $S --precision highest,high --save-step0 $STEP0"
stamp "foxgate foxPro: ACP off/on x highest/high"
timeout "${FG_FOX_S:-110}" node foxgate.mjs $common --model foxPro --acp off,on --json "$OUT/foxgate-foxPro.json" > "$OUT/foxgate-foxPro.txt" 2>&1
stamp "rc $?"
stamp "foxgate transformer: highest/high"
timeout "${FG_TF_S:-60}" node foxgate.mjs $common --model transformer --json "$OUT/foxgate-transformer.json" > "$OUT/foxgate-transformer.txt" 2>&1
stamp "rc $?"
stamp "torch: fp32 / TF32 / bf16 on foxgate's weights and batch"
timeout "${TORCH_S:-90}" python3 torch/train_bench.py --weights "$STEP0" --preset "$P" --steps "$S" --json "$OUT/torch-train.json" > "$OUT/torch-train.txt" 2>&1
stamp "rc $?"
python3 torch/compare.py "$OUT"/foxgate-*.json "$OUT/torch-train.json" > "$OUT/train-vs-torch.md" 2>>"$OUT/log.txt"
cat "$OUT/train-vs-torch.md"
stamp done
