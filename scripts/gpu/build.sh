#!/bin/sh
# Bundles the foxgate CLI (with its benchmarks and tfjs) into build-gpu/foxgate.mjs for the lent
# GPU machine, which has no package registry, then packs Node + Dawn around it (.gpu/).
# Usage from the project root, after `npm test` or `npm run demo` installed the workspace:
#   sh scripts/gpu/build.sh && (device) source .gpu/boot.sh; node /tmp/gpuenv/app/foxgate.mjs bench attention
set -eu
cd "$(dirname "$0")/../.."
mkdir -p build-gpu
cp scripts/gpu/torch_ref.py build-gpu/
ESBUILD=$(node -e "console.log(require.resolve('esbuild/bin/esbuild', { paths: [require.resolve('tsup')] }))")
"$ESBUILD" apps/cli/src/cli.ts --bundle --platform=node --format=esm --target=node20 \
  --external:webgpu --conditions=source --outfile=build-gpu/foxgate.mjs --log-level=warning \
  "--banner:js=import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);"
../shared/gpu/pack build-gpu
