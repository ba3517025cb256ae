#!/bin/sh
# The training comparison in one device call: foxgate (WebGPU) and PyTorch (CUDA) on the same
# models, weights and batch, then the markdown rows. From the bundle folder (/tmp/gpuenv/app after
# `source .gpu/boot.sh`; scripts/gpu/build.sh copies bench/torch to ./torch):
#   sh torch/run-gpu.sh OUT [T=4096] [B=8] [STEPS=8]
# OUT gets few files (the device call brings back only a handful): log.txt (every part's output),
# foxgate-{foxPro,transformer}.json, torch-train.json, train-vs-torch.md (+ foxgate-maxbatch.json).
# Environment: FG_MODELS (foxPro,transformer: the models to run), FG_PRESET (125M), FG_PREC (highest,high), FG_FIXTURE=0 skips the float64 structure
# check, FG_MAXB=1 adds `--max-batch` for foxPro ('highest', ACP off) at FG_MAXB_T (4096) with
# FG_MAXB_STEPS (4) steps, doubling B while twice the peak stays under FG_MAXB_CAP GB (130: the
# H200 has 141 GiB; a real out-of-memory on Vulkan may lose the device); time limits in seconds FG_FOX_S (110), FG_TF_S (65), TORCH_S (75),
# FG_MAXB_S (70): a slow part leaves the others' rows. The step-0 checkpoints (340 MB each at
# 125M) go to /tmp/fg-step0.
set -u
OUT=$1
T=${2:-4096}
B=${3:-8}
S=${4:-8}
P=${FG_PRESET:-125M}
MODELS=${FG_MODELS:-foxPro,transformer}
has() { case ",$MODELS," in *",$1,"*) return 0 ;; esac; return 1; }
PREC=${FG_PREC:-highest,high}
STEP0=/tmp/fg-step0
LOG="$OUT/log.txt"
mkdir -p "$OUT"
rm -rf "$STEP0"
stamp() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$LOG"; }
part() { # part NAME SECONDS command...: output into the log, then its exit status
  name=$1 secs=$2
  shift 2
  stamp "$name (limit ${secs} s)"
  timeout "$secs" "$@" >> "$LOG" 2>&1
  stamp "$name: rc $?"
}
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1; cat BUILD_INFO 2>/dev/null; } >> "$LOG"

if [ "${FG_FIXTURE:-1}" != 0 ]; then
  rm -rf /tmp/fg-fixture
  part "fixture: foxgate float64 losses of tiny models with large random weights" 30 node torch/fixture.mjs /tmp/fg-fixture
  part "fixture: the torch models on them (float64, CPU)" 60 python3 torch/train_bench.py --fixture /tmp/fg-fixture
fi

common="bench train --device webgpu --preset $P --context $T --batch $B --steps $S --precision $PREC --save-step0 $STEP0"
if has foxPro; then
  part "foxgate foxPro, ACP off/on × $PREC" "${FG_FOX_S:-110}" node foxgate.mjs $common --model foxPro --acp off,on --json "$OUT/foxgate-foxPro.json"
fi
if has transformer; then
  part "foxgate transformer × $PREC" "${FG_TF_S:-65}" node foxgate.mjs $common --model transformer --json "$OUT/foxgate-transformer.json"
fi
part "torch fp32 / TF32 / bf16 on foxgate's weights and batch" "${TORCH_S:-75}" python3 torch/train_bench.py --models "$MODELS" --weights "$STEP0" --preset "$P" --steps "$S" --json "$OUT/torch-train.json"
if [ "${FG_MAXB:-0}" = 1 ]; then
  part "foxgate foxPro --max-batch at T=${FG_MAXB_T:-4096}" "${FG_MAXB_S:-70}" node foxgate.mjs bench train --device webgpu --preset "$P" \
    --context "${FG_MAXB_T:-4096}" --max-batch --memory-cap "${FG_MAXB_CAP:-130}" --steps "${FG_MAXB_STEPS:-4}" --model foxPro --json "$OUT/foxgate-maxbatch.json"
fi
python3 torch/compare.py "$OUT"/foxgate-*.json "$OUT/torch-train.json" > "$OUT/train-vs-torch.md" 2>> "$LOG"
cat "$OUT/train-vs-torch.md"
stamp done
