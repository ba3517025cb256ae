#!/bin/sh
# Bundles the foxgate CLI (with its benchmarks and tfjs) into build-gpu/foxgate.mjs for the lent
# GPU machine, which has no package registry, then packs Node + Dawn around it (.gpu/).
# Usage from the project root, after `npm test` or `npm run demo` installed the workspace:
#   sh scripts/gpu/build.sh, then on the device: source .gpu/boot.sh; cd /tmp/gpuenv/app;
#   node check.mjs; node foxgate.mjs bench attention; or every table of BENCHMARKS.md: sh bench-all.sh "$OUT"
set -eu
cd "$(dirname "$0")/../.."
mkdir -p build-gpu
cp scripts/gpu/torch_ref.py scripts/gpu/fox_triton_ref.py scripts/gpu/bench-all.sh scripts/gpu/bench-md.mjs build-gpu/
# the PyTorch peer of bench train (bench-all.sh runs it where the bundle has it)
if [ -d bench/torch ]; then mkdir -p build-gpu/torch && cp bench/torch/*.py build-gpu/torch/; fi
# what the bundle was built from, for the reports (bench-all.sh prints it)
echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(git status --porcelain 2>/dev/null | grep -c .) uncommitted paths, built $(date -u +%Y-%m-%dT%H:%M:%SZ)" > build-gpu/BUILD_INFO
ESBUILD=$(node -e "console.log(require.resolve('esbuild/bin/esbuild', { paths: [require.resolve('tsup')] }))")
bundle() {
  "$ESBUILD" "$1" --bundle --platform=node --format=esm --target=node20 \
    --external:webgpu --conditions=source --outfile="$2" --log-level=warning \
    "--banner:js=import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);"
}
bundle apps/cli/src/cli.ts build-gpu/foxgate.mjs   # the CLI: bench ops / attention
bundle scripts/gpu/check.ts build-gpu/check.mjs    # hardware correctness checks
bundle scripts/gpu/profile-attention.ts build-gpu/profile.mjs   # attention time per kernel
bundle scripts/gpu/check-matmul-high.ts build-gpu/check-matmul-high.mjs   # f16 tensor-core matmul: variants, checks, timing
bundle scripts/gpu/check-attention-f16.ts build-gpu/check-attention-f16.mjs   # f16 tensor-core attention forward: checks, timing, ablations
bundle scripts/gpu/probe-sgmat.ts build-gpu/probe-sgmat.mjs   # single-subgroup probes of the subgroup-matrix operations
# the training comparison against PyTorch: torch/run-gpu.sh OUT, with foxgate's float64 fixture of the torch models' structure check
if [ -d bench/torch ]; then cp bench/torch/run-gpu.sh build-gpu/torch/ && bundle bench/torch/fixture.ts build-gpu/torch/fixture.mjs; fi
../shared/gpu/pack build-gpu
