/*
 * Correctness on a hardware GPU: `node check.mjs` (bundled by scripts/gpu/build.sh) runs every
 * WebGPU primitive against the CPU backend, forgetting attention (output and gradients, also with
 * sliding windows) against the fused CPU kernel in float64 and SPARSEK (sparsek(z, k), the
 * attention forward and backward kernels and the fused route) against its float64 CPU kernels,
 * prints failures and the seconds of each part, writes DIR/check.json (`node check.mjs DIR`) and exits
 * non-zero when anything failed. With `--f16` also, in its own process, the checks of the opt-in
 * f16 attention forward (check-attention-f16.mjs, bundled next to it): that kernel is no default
 * (it fails its checks on the H200 as of 2026-12-02, BENCHMARKS.md), so the check of the defaults
 * does not include it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { checkAttention } from './check-attention.js';
import { checkOps } from './check-ops.js';
import { checkSparsek } from './check-sparsek.js';

const results: { name: string; ok: boolean; msg?: string }[] = [];
for (const [part, check] of [
  ['ops', checkOps],
  ['attention', checkAttention],
  ['sparsek', checkSparsek],
] as const) {
  const t0 = performance.now();
  const rows = await check();
  results.push(...rows);
  console.log(
    `${part}: ${rows.length} checks, ${rows.filter((r) => !r.ok).length} failed, ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
}
for (const r of results)
  if (!r.ok || r.name.includes('tiles computed')) console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${r.name}${r.msg ? `: ${r.msg}` : ''}`);
const failed = results.filter((r) => !r.ok).length;
console.log(`checks: ${results.length - failed}/${results.length} passed`);
const withF16 = process.argv.includes('--f16');
const outDir = process.argv.slice(2).find((a) => a !== '--f16');
if (outDir) writeFileSync(`${outDir}/check.json`, `${JSON.stringify(results, null, 1)}\n`);
// precision 'high' (f16 tensor cores) needs Dawn toggles at instance creation: its own process
const f16 = join(dirname(process.argv[1]), 'check-attention-f16.mjs');
let f16Failed = false;
if (!withF16) console.log('opt-in f16 attention forward not checked (add --f16, or run check-attention-f16.mjs)');
else if (existsSync(f16)) {
  const r = spawnSync(process.execPath, [f16, ...(outDir ? [outDir] : []), 'checks'], { stdio: 'inherit' });
  f16Failed = r.status !== 0;
}
process.exit(failed || f16Failed ? 1 : 0);
