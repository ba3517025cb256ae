/*
 * Correctness on a hardware GPU: `node check.mjs` (bundled by scripts/gpu/build.sh) runs every
 * WebGPU primitive against the CPU backend and forgetting attention (output and gradients)
 * against the fused CPU kernel in float64, prints failures, writes DIR/check.json (`node check.mjs DIR`) and exits
 * non-zero when anything failed.
 */
import { writeFileSync } from 'node:fs';
import { checkAttention } from './check-attention.js';
import { checkOps } from './check-ops.js';

const results = [...(await checkOps()), ...(await checkAttention())];
for (const r of results)
  if (!r.ok || r.name.includes('tiles computed')) console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${r.name}${r.msg ? `: ${r.msg}` : ''}`);
const failed = results.filter((r) => !r.ok).length;
console.log(`checks: ${results.length - failed}/${results.length} passed`);
const outDir = process.argv[2];
if (outDir) writeFileSync(`${outDir}/check.json`, `${JSON.stringify(results, null, 1)}\n`);
process.exit(failed ? 1 : 0);
