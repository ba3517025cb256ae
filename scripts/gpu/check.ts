/*
 * Correctness on a hardware GPU: `node check.mjs` (bundled by scripts/gpu/build.sh) runs every
 * WebGPU primitive against the CPU backend, forgetting attention (output and gradients, also with
 * sliding windows) against the fused CPU kernel in float64 and SPARSEK (sparsek(z, k), the
 * attention forward and backward kernels and the fused route) against its float64 CPU kernels,
 * prints failures and the seconds of each part, writes DIR/check.json (`node check.mjs DIR`) and exits
 * non-zero when anything failed. Then, in its own process, the checks of the f16 attention
 * forward that precision 'high' runs (check-attention-f16.mjs `checks`, bundled next to it; it
 * needs Dawn toggles at instance creation); `--no-f16` skips them, `--f16-bwd` runs them with the
 * opt-in f16 backward too (`checks-bwd`).
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
const flags = ['--no-f16', '--f16-bwd'];
const outDir = process.argv.slice(2).find((a) => !flags.includes(a));
if (outDir) writeFileSync(`${outDir}/check.json`, `${JSON.stringify(results, null, 1)}\n`);
const f16 = join(dirname(process.argv[1]), 'check-attention-f16.mjs');
let f16Failed = false;
if (process.argv.includes('--no-f16')) console.log('f16 attention (precision high) not checked: --no-f16');
else if (existsSync(f16)) {
  const part = process.argv.includes('--f16-bwd') ? 'checks-bwd' : 'checks';
  const r = spawnSync(process.execPath, [f16, ...(outDir ? [outDir] : []), part], { stdio: 'inherit' });
  f16Failed = r.status !== 0;
} else {
  console.log(`FAIL f16 attention: ${f16} is missing`);
  f16Failed = true;
}
process.exit(failed || f16Failed ? 1 : 0);
