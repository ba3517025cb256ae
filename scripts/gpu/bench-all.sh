#!/bin/sh
# Every table of BENCHMARKS.md in one device call. Built into the GPU bundle by
# scripts/gpu/build.sh (`pnpm bench:gpu` builds it and prints the call); on the GPU machine:
#   source .gpu/boot.sh; cd /tmp/gpuenv/app; sh bench-all.sh "$OUT"
# Writes to OUT (default $OUT): per step NAME.txt (stdout + stderr), NAME.json (rows), NAME.md
# (the rows as a markdown table); env.txt (device, driver, node, bundle commit); steps.md (exit
# status and seconds per step); REPORT.md (all of it in one file).
#
# Time (estimates for the lent H200 from the raw rows in benchmarks/, seconds): boot.sh ≈ 15,
# env + info 5, ops 30, matmul 'high' suite 35 (measured 33), attention D=64 all sizes with the
# deterministic variant 50, SPARSEK vs FoX vs sliding window 90, generate 125M 15 (measured ≤ 10),
# train 125M T=4096 B=8 6 steps × (foxPro ACP off/on, transformer) × ('highest', 'high') 100,
# PyTorch training (2 models × fp32/TF32/bf16, 2 warm-up + 6 steps) 100, torch_ref 20, official
# FoX Triton probe 10 (60 if installed and compiling), attention D=128 at 16k 10: ≈ 480–530 in
# all, close to the limit: SPARSEK and the PyTorch training are the least known. Each step has its
# own time limit, and no step starts past BUDGET seconds (default 540) from the start of this
# script: a step that overruns costs its limit and marks the rest "skipped", but the call still
# ends inside the device's 600 s with every file written so far. The order puts the foxgate tables
# first and the least needed rows (D = 128) last.
#
# A step's failure (a FAILED row exits non-zero) is recorded in steps.md and the next step runs;
# the script exits 1 when any step did not exit 0.
set -u
OUT=${1:-${OUT:-}}
if [ -z "$OUT" ]; then
  echo "bench-all.sh: give the output folder as the first argument or in \$OUT" >&2
  exit 2
fi
mkdir -p "$OUT"
cd "$(dirname "$0")" || exit 2
BUDGET=${BUDGET:-540}
T0=$(date +%s)
SEC=${SECONDS_PER_CASE:-1}
FAILED=0

have_timeout=0
command -v timeout >/dev/null 2>&1 && have_timeout=1

echo "| step | exit | seconds | command |" > "$OUT/steps.md"
echo "| --- | --- | --- | --- |" >> "$OUT/steps.md"

# step NAME LIMIT_S CMD...: runs CMD with stdout+stderr in OUT/NAME.txt, at most LIMIT_S seconds
# (less when the budget is nearly spent), and records its exit status and time in steps.md.
step() {
  name=$1
  limit=$2
  shift 2
  now=$(date +%s)
  left=$((BUDGET - (now - T0)))
  if [ "$left" -lt 15 ]; then
    echo "| $name | skipped (budget) | 0 | \`$*\` |" >> "$OUT/steps.md"
    echo "bench-all: $name skipped: ${left}s of the ${BUDGET}s budget left" >&2
    return 0
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "bench-all: $name (limit ${limit}s): $*" >&2
  if [ "$have_timeout" = 1 ]; then
    timeout -k 5 "$limit" "$@" > "$OUT/$name.txt" 2>&1
  else
    "$@" > "$OUT/$name.txt" 2>&1
  fi
  rc=$?
  secs=$(($(date +%s) - now))
  [ "$rc" = 124 ] && rc="124 (time limit)"
  [ "$rc" != 0 ] && FAILED=$((FAILED + 1))
  echo "| $name | $rc | $secs | \`$*\` |" >> "$OUT/steps.md"
  echo "bench-all: $name exit $rc after ${secs}s" >&2
}

# md NAME TITLE [bench-md options]: OUT/NAME.md from the rows in OUT/NAME.json (or .jsonl)
md() {
  name=$1
  title=$2
  shift 2
  for f in "$OUT/$name.json" "$OUT/$name.jsonl"; do
    if [ -s "$f" ]; then
      node bench-md.mjs "$f" "$title" "$@" > "$OUT/$name.md" 2>&1
      return 0
    fi
  done
  printf '### %s\n\nno rows: see %s.txt\n' "$title" "$name" > "$OUT/$name.md"
}

# --- environment --------------------------------------------------------------------------------
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "gpu: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo 'nvidia-smi not found')"
  echo "node: $(node --version)"
  echo "bundle: $(cat BUILD_INFO 2>/dev/null || echo 'no BUILD_INFO (not built by scripts/gpu/build.sh)')"
  echo "python: $(python3 -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__)' 2>/dev/null || echo 'no torch')"
} > "$OUT/env.txt"
step info 30 node foxgate.mjs info

# --- ops: matmul 'highest' and elementwise/copy/softmax vs tfjs-webgpu; matmul 'high' vs 'highest'
step ops 90 node foxgate.mjs bench ops --seconds "$SEC" --json "$OUT/ops.json"
md ops "bench ops: f32 matmul (TFLOP/s), add / copy / softmax (GB/s), foxgate vs tfjs-webgpu"
mkdir -p "$OUT/matmul-high"
step matmul-high 120 node check-matmul-high.mjs "$OUT/matmul-high" suite
[ -s "$OUT/matmul-high/matmul-high.json" ] && cp "$OUT/matmul-high/matmul-high.json" "$OUT/matmul-high.json"
md matmul-high "matmul 'highest' vs 'high' (f16 operands on the tensor cores), checked against float64" \
  --prefix name=bench --keys variant,name,precision,tflops,ms,iters,maxTerm,relL2,ok

# --- attention: forgetting attention (+ACP), the deterministic backward, the composed reference
echo '{"attention":{"det":{"deterministic":true}}}' > "$OUT/det-tiles.json"
step attention 150 node foxgate.mjs bench attention --seconds "$SEC" --tiles "$OUT/det-tiles.json" --json "$OUT/attention.json"
md attention "bench attention: forgetting attention B=4 H=16 D=64 f32 (ms)"

# --- SPARSEK attention vs full FoX vs sliding-window softmax attention
step sparsek 150 node foxgate.mjs bench attention --variant sparsek --seconds "$SEC" --json "$OUT/sparsek.json"
md sparsek "bench attention --variant sparsek: SPARSEK vs FoX vs sliding window (ms)"

# --- generation: decode with the KV cache vs recomputing the prefix, ACP eviction
step generate 90 node foxgate.mjs bench generate --device webgpu --preset 125M --context 4096 --steps 16 --json "$OUT/generate.json"
md generate "bench generate: 125M, prompt 4096, greedy, batch 1"

# --- training: a full step (fwd, bwd, AdamW) at 125M, T=4096, B=8: foxgate, then PyTorch on the same
# weights and batch (--save-step0 writes them, with the step-0 loss train_bench.py must match; kept
# outside OUT: two 85M-parameter checkpoints are too large to bring back)
STEP0=${STEP0_DIR:-/tmp/bench-step0}
rm -rf "$STEP0"
step train 200 node foxgate.mjs bench train --device webgpu --preset 125M --context 4096 --batch 8 --steps 6 \
  --acp off,on --precision highest,high --save-step0 "$STEP0" --json "$OUT/train.json"
md train "bench train: 125M T=4096 B=8, foxPro ACP off/on and transformer, 'highest' and 'high' (tokens/s)"
if [ -f torch/train_bench.py ] && [ -d "$STEP0" ]; then
  step torch-train 200 python3 torch/train_bench.py --weights "$STEP0" --steps 6 --json "$OUT/torch-train.json"
elif [ -f torch/train_bench.py ]; then
  # no foxgate step-0 files (the train step failed): torch's own initialisation, foxgate's token stream
  step torch-train 200 python3 torch/train_bench.py --preset 125M --context 4096 --batch 8 --steps 6 --json "$OUT/torch-train.json"
else
  echo "| torch-train | not in this bundle (no torch/train_bench.py) | 0 | |" >> "$OUT/steps.md"
fi
md torch-train "PyTorch training step: the same models, weights and batch, fp32 / TF32 / bf16 autocast (tokens/s)"

# --- PyTorch and official FoX Triton anchors on the same GPU in the same call
step torch-ref 60 sh -c "python3 torch_ref.py > '$OUT/torch-ref.jsonl'"
md torch-ref "PyTorch: cuBLAS matmul fp32 / TF32 / bf16 (TFLOP/s), SDPA fp32 causal (ms)"
step fox-triton 90 sh -c "python3 fox_triton_ref.py > '$OUT/fox-triton.jsonl'"
md fox-triton "official FoX Triton kernel, bf16 (ms)"

# --- attention at D = 128 (least needed: last)
step attention-d128 60 node foxgate.mjs bench attention --sizes 16384 --head-dim 128 --seconds "$SEC" --json "$OUT/attention-d128.json"
md attention-d128 "bench attention: T=16384 D=128 (ms)"

# --- one report ------------------------------------------------------------------------------------
{
  echo "# bench-all.sh report"
  echo
  echo '```'
  cat "$OUT/env.txt"
  echo '```'
  echo
  echo "## Steps ($FAILED not exiting 0; $(($(date +%s) - T0)) s in all)"
  echo
  cat "$OUT/steps.md"
  for n in ops matmul-high attention sparsek generate train torch-train torch-ref fox-triton attention-d128; do
    echo
    cat "$OUT/$n.md" 2>/dev/null
  done
} > "$OUT/REPORT.md"
echo "bench-all: $FAILED step(s) not exiting 0; report in $OUT/REPORT.md" >&2
[ "$FAILED" = 0 ]
