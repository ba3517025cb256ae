/*
 * Time per piece of forgetting attention's WebGPU path on the benchmark's problem (B=4, H=16,
 * D=64, T from argv, default 16384): the cumsum of logF, the forward kernel, δ = Σ o·dO, the
 * backward kernels (separate dQ kernel, or dQ fused into dK/dV), and the dlogF scan. Each piece
 * is warmed up, queued `n` times and closed by one sync. Bundled by scripts/gpu/build.sh as
 * profile.mjs: `node profile.mjs [T] [DIR]` writes DIR/profile.json.
 */
import { writeFileSync } from 'node:fs';
import { benchProblem } from '../../apps/cli/src/bench/attention.js';
import {
  foxBackwardWebGPU,
  foxDeltaWebGPU,
  foxDlogfWebGPU,
  foxForwardWebGPU,
  foxTilesFor,
  setFoxTiles,
} from '../../packages/attention/src/dev.js';
import { cumsum, emptyCache, initWebGPU, mul, sum, type Tensor } from '../../packages/tensor/src/index.js';

const T = Number(process.argv[2] ?? 16384);
const outDir = process.argv[3];
const [B, H, D] = [4, 16, 64];
const gpu = await initWebGPU();
const dims = { B, Tq: T, Tk: T, H, D };
const scale = 1 / Math.sqrt(D);
const { q, k, v, dO, logF } = benchProblem(gpu, B, T, H, D);
const rows: { piece: string; ms: number }[] = [];

async function time(piece: string, n: number, run: () => Tensor[]): Promise<void> {
  for (let i = 0; i < 2; i++) for (const t of run()) t.dispose();
  await gpu.sync();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) for (const t of run()) t.dispose();
  await gpu.sync();
  const ms = (performance.now() - t0) / n;
  rows.push({ piece, ms });
  console.log(`${piece.padEnd(48)} ${ms.toFixed(3)} ms`);
}

const lam = cumsum(logF, 1);
await time('cumsum of logF', 20, () => [cumsum(logF, 1)]);
await time('forward kernel', 10, () => {
  const r = foxForwardWebGPU(gpu, q, k, v, lam, null, dims, scale);
  return [r.o, r.lse2];
});
const { o, lse2 } = foxForwardWebGPU(gpu, q, k, v, lam, null, dims, scale);
await time('δ = Σ o·dO (sum(mul(o, dO), -1))', 20, () => {
  const m = mul(o, dO);
  return [m, sum(m, -1)];
});
await time('δ = Σ o·dO (fox_delta kernel)', 20, () => [foxDeltaWebGPU(gpu, o, dO, dims)]);
const delta = sum(mul(o, dO), -1);
const grads = (g: ReturnType<typeof foxBackwardWebGPU>) => [
  g.dq,
  g.dk,
  g.dv,
  ...(g.colsum ? [g.colsum] : []),
  ...(g.rowsum ? [g.rowsum] : []),
];
const def = foxTilesFor(gpu, D);
const dkv = def.wideDkv ? { ...def.wideDkv, fuseDq: false } : null;
for (const [label, tiles, deterministic] of [
  ['backward kernels: dK/dV, dQ (deterministic)', {}, true],
  ['backward kernel: dK/dV with dQ (default)', {}, false],
  ['  the same, 32 query columns', dkv && { wideDkv: { ...dkv, fuseDq: true, bk: 32 } }, false],
] as const) {
  if (!tiles) continue;
  setFoxTiles(tiles);
  await time(label, 5, () => grads(foxBackwardWebGPU(gpu, q, k, v, dO, lse2, delta, lam, null, dims, scale, deterministic)));
  emptyCache();
}
setFoxTiles({});
const g = foxBackwardWebGPU(gpu, q, k, v, dO, lse2, delta, lam, null, dims, scale);
await time('dlogF scan (row and column sums)', 20, () => [foxDlogfWebGPU(gpu, g.rowsum, g.colsum as Tensor, dims)]);
await time('dlogF scan (column sums)', 20, () => [foxDlogfWebGPU(gpu, null, g.colsum as Tensor, dims)]);
if (outDir) writeFileSync(`${outDir}/profile.json`, `${JSON.stringify({ T, B, H, D, device: gpu.info, rows }, null, 1)}\n`);
await gpu.destroy();
