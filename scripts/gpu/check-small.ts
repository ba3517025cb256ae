/*
 * The window and SPARSEK checks of check.ts with small cases, for a software adapter (lavapipe):
 * `XDG_RUNTIME_DIR=/tmp/xdg npx tsx --conditions=source scripts/gpu/check-small.ts` (a few
 * minutes; FOXGATE_CHECK_VERBOSE=1 prints each SPARSEK case with its seconds). Exits non-zero
 * when anything failed.
 */
import { initWebGPU } from '../../packages/tensor/src/index.js';
import { checkWindows } from './check-attention.js';
import { checkSparsek } from './check-sparsek.js';

const results: { name: string; ok: boolean; msg?: string }[] = [];
let t0 = performance.now();
const gpu = await initWebGPU();
results.push(
  ...(await checkWindows(
    gpu,
    [
      ['', {}],
      [' [tiled]', { wide: false, wideDq: false, wideDkv: false }],
    ],
    () => true,
    true,
  )),
);
await gpu.destroy();
console.log(`windows: ${results.length} checks, ${((performance.now() - t0) / 1000).toFixed(1)} s`);
t0 = performance.now();
const sk = await checkSparsek(true);
console.log(`sparsek: ${sk.length} checks, ${((performance.now() - t0) / 1000).toFixed(1)} s`);
results.push(...sk);
for (const r of results) console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${r.name}${r.msg ? `: ${r.msg}` : ''}`);
const failed = results.filter((r) => !r.ok).length;
console.log(`checks: ${results.length - failed}/${results.length} passed`);
process.exit(failed ? 1 : 0);
