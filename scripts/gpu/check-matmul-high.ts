/*
 * The 'high' matmul (f16 operands, f32 accumulation on the tensor cores) on a hardware GPU:
 * `node check-matmul-high.mjs [OUTDIR] [variant ...]` (bundled by scripts/gpu/build.sh).
 *
 * Every variant runs in its own child process with a kill timer, so a kernel that hangs the
 * device or aborts Dawn costs its timeout and not the run. Each child checks its kernel against
 * float64 products of the same f32 inputs (error per entry over the term scale Σ|a||b|, and the
 * relative L2 error), then times n = 4096 (whole op, and the core kernel alone). The `suite`
 * child runs the default configurations over every transpose layout, batches, partial tiles,
 * odd N and operands far outside the f16 range, and times 'high' against 'highest' side by side.
 * Rows go to OUTDIR/matmul-high.json; the table is printed last.
 */
import { writeFileSync } from 'node:fs';
import type { View } from '../../packages/tensor/src/backend.js';
import type { WebGPUBackend } from '../../packages/tensor/src/backends/webgpu/backend.js';
import { initWebGPU } from '../../packages/tensor/src/backends/webgpu/device.js';
import type { GpuStorage } from '../../packages/tensor/src/backends/webgpu/engine.js';
import {
  prepareHigh,
  SGMAT_CONFIGS,
  type SgmatConfig,
  setSgmatConfig,
  setSgmatPatch,
} from '../../packages/tensor/src/backends/webgpu/kernels/matmul-sgmat.js';
import type { MatmulPrecision } from '../../packages/tensor/src/precision.js';
import { runChild } from './child.js';

type Row = Record<string, unknown> & { variant: string; name: string; ok: boolean };

const VARIANTS: Record<string, Partial<SgmatConfig> & { base: string }> = {
  'simple-legacy': { base: 'simple', spelling: 'legacy' },
  'simple-legacy-builtin': { base: 'simple', spelling: 'legacy', sgIndex: 'builtin' },
  'simple-legacy-bcast': { base: 'simple', spelling: 'legacy', sgIndex: 'broadcast-diag' },
  'simple-template': { base: 'simple', spelling: 'template' },
  small: { base: 'small' },
  wide: { base: 'wide' },
  // session 1 of 2026-12-01, second call: 'wide' was 8 subgroups (2×4) of 64×32 outputs then
  'wide-8sg': { base: 'wide', SM: 2, SN: 4 },
  'wide-direct': { base: 'wide', staged: false },
  'wide-pad0': { base: 'wide', pad: 0 },
  'wide-pf': { base: 'wide', prefetch: true },
  'wide-pad16': { base: 'wide', pad: 16 },
  'wide-bk64': { base: 'wide', BK: 64 },
  'wide-bk64-pf': { base: 'wide', BK: 64, prefetch: true },
  'wide-128x256': { base: 'wide', BN: 256, SM: 2, SN: 4 },
  'wide-128x256-pf': { base: 'wide', BN: 256, SM: 2, SN: 4, prefetch: true },
  'wide-256x128-pf': { base: 'wide', BM: 256, SM: 4, SN: 2, prefetch: true },
  'wide-64x128': { base: 'wide', BM: 64, SM: 1, SN: 2 },
  'wide-64x128-pf': { base: 'wide', BM: 64, SM: 1, SN: 2, prefetch: true },
  // 2026-12-02: double-buffered staging, 16-byte aligned staging indices, more result matrices per subgroup
  'wide-dbuf': { base: 'wide', dbuf: true },
  'wide-dbuf-a8': { base: 'wide', dbuf: true, align8: true },
  'wide-a8': { base: 'wide', align8: true },
  'wide-128x256-pf-a8': { base: 'wide', BN: 256, SM: 2, SN: 4, prefetch: true, align8: true },
  'wide-192x128': { base: 'wide', BM: 192 },
  'wide-128x192': { base: 'wide', BN: 192 },
  'wide-256x128-4sg': { base: 'wide', BM: 256 },
};

/** A variant's configuration; `mods` (the spelling and subgroup index found to work) apply where the variant sets none. */
function configOf(name: string, mods: Partial<SgmatConfig>): SgmatConfig {
  const v = VARIANTS[name];
  const c = { ...SGMAT_CONFIGS[v.base], ...mods, ...v, base: undefined } as SgmatConfig & { base?: string };
  delete c.base;
  return c;
}

// ---- child ----------------------------------------------------------------------------------

let seed = (Date.now() ^ (process.pid << 8)) >>> 0 || 1;
function rand(): number {
  seed ^= seed << 13;
  seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  seed >>>= 0;
  return seed / 4294967296;
}

interface HostOp {
  data: Float32Array;
  /** logical [batch..., R, C] with strides (elements) */
  shape: number[];
  strides: number[];
}

/** A [...batch, R, C] operand, stored row-major or transposed ([..., C, R]); batchStride0 = 0 broadcasts. */
function makeOp(batch: number[], R: number, C: number, transposed: boolean, scale: number, broadcast = false): HostOp {
  const per = R * C;
  const nb = broadcast ? 1 : batch.reduce((x, y) => x * y, 1);
  const data = new Float32Array(nb * per);
  for (let i = 0; i < data.length; i++) data[i] = (rand() * 2 - 1) * scale;
  const bstr: number[] = [];
  let acc = per;
  for (let d = batch.length - 1; d >= 0; d--) {
    bstr[d] = broadcast ? 0 : acc;
    acc *= batch[d];
  }
  return { data, shape: [...batch, R, C], strides: [...bstr, ...(transposed ? [1, R] : [C, 1])] };
}

function at(op: HostOp, bIdx: number[], r: number, c: number): number {
  const n = op.shape.length;
  let o = r * op.strides[n - 2] + c * op.strides[n - 1];
  bIdx.forEach((v, d) => {
    o += v * op.strides[d];
  });
  return op.data[o];
}

function upload(g: WebGPUBackend, op: HostOp): View {
  return { storage: g.upload(op.data, 'float32'), dtype: 'float32', shape: op.shape, strides: op.strides, offset: 0 };
}

/** Error of out against float64 at `samples` entries (all when ≤ 0): max |err|/Σ|a||b|, rel L2. */
function compare(a: HostOp, b: HostOp, out: Float32Array, samples: number): { maxTerm: number; relL2: number; nonFinite: number } {
  const r = a.shape.length;
  const batch = a.shape.slice(0, r - 2);
  const [M, K] = a.shape.slice(r - 2);
  const N = b.shape[r - 1];
  const nb = batch.reduce((x, y) => x * y, 1);
  const total = nb * M * N;
  let maxTerm = 0;
  let se = 0;
  let sr = 0;
  let nonFinite = 0;
  const count = samples > 0 ? Math.min(samples, total) : total;
  for (let s = 0; s < count; s++) {
    const idx = samples > 0 ? Math.floor(rand() * total) : s;
    const bi = Math.floor(idx / (M * N));
    const m = Math.floor((idx % (M * N)) / N);
    const n = idx % N;
    const bIdx: number[] = [];
    let rem = bi;
    for (let d = batch.length - 1; d >= 0; d--) {
      bIdx[d] = rem % batch[d];
      rem = Math.floor(rem / batch[d]);
    }
    let ref = 0;
    let mag = 0;
    for (let k = 0; k < K; k++) {
      const p = at(a, bIdx, m, k) * at(b, bIdx, k, n);
      ref += p;
      mag += Math.abs(p);
    }
    const v = out[idx];
    if (!Number.isFinite(v)) nonFinite++;
    const e = Math.abs(v - ref);
    if (mag > 0) maxTerm = Math.max(maxTerm, e / mag);
    se += e * e;
    sr += ref * ref;
  }
  return { maxTerm, relL2: Math.sqrt(se / (sr || 1)), nonFinite };
}

async function checkCase(
  g: WebGPUBackend,
  variant: string,
  label: string,
  batch: number[],
  M: number,
  K: number,
  N: number,
  aT: boolean,
  bT: boolean,
  scaleA: number,
  scaleB: number,
  samples: number,
  broadcastB = false,
): Promise<Row> {
  const a = makeOp(batch, M, K, aT, scaleA);
  const b = makeOp(batch, K, N, bT, scaleB, broadcastB);
  const av = upload(g, a);
  const bv = upload(g, b);
  const s = g.matmul(av, bv, { precision: 'high' });
  const out = (await g.read(s, 'float32', batch.reduce((x, y) => x * y, 1) * M * N)) as Float32Array;
  g.free(s);
  g.free(av.storage);
  g.free(bv.storage);
  const err = compare(a, b, out, samples);
  // two f16 roundings per term ((1 + 2^-11)^2 - 1 ≈ 9.8e-4) plus f32 accumulation, of the term scale
  const ok = err.nonFinite === 0 && err.maxTerm <= 1.1e-3;
  return { variant, name: label, ok, shape: [...batch, M, K, N], aT, bT, scaleA, scaleB, ...err };
}

async function timeIt(g: WebGPUBackend, fn: () => void, minMs = 700): Promise<{ ms: number; iters: number }> {
  fn();
  await g.sync();
  let iters = 1;
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < iters; i++) fn();
    await g.sync();
    const dt = performance.now() - t0;
    if (dt >= minMs || iters >= 2048) return { ms: dt / iters, iters };
    iters *= Math.min(8, Math.max(2, Math.ceil(minMs / Math.max(dt, 1))));
  }
}

async function benchSize(
  g: WebGPUBackend,
  variant: string,
  n: number,
  precisions: MatmulPrecision[],
  // a weight gradient's shape instead of n³: Aᵀ [M, K] (stored [K, M]) · B [K, N]
  dw?: [M: number, K: number, N: number],
): Promise<Row[]> {
  const [M, K, N] = dw ?? [n, n, n];
  const a = makeOp([], M, K, dw !== undefined, 1);
  const b = makeOp([], K, N, false, 1);
  const av = upload(g, a);
  const bv = upload(g, b);
  const flop = 2 * M * K * N;
  const size = dw ? `dW ${M}x${K}x${N}` : `n=${n}`;
  const rows: Row[] = [];
  for (const precision of precisions) {
    const s = g.matmul(av, bv, { precision });
    const out = (await g.read(s, 'float32', M * N)) as Float32Array;
    g.free(s);
    const err = compare(a, b, out, 256);
    const t = await timeIt(g, () => g.free(g.matmul(av, bv, { precision })));
    rows.push({
      variant,
      name: `bench ${precision} ${size}`,
      ok: err.nonFinite === 0,
      n,
      precision,
      ...t,
      tflops: flop / t.ms / 1e9,
      ...err,
    });
  }
  if (precisions.includes('high') && g.tensorCores && !dw) {
    const prod = prepareHigh(g.engine, av, bv);
    prod.run();
    const t = await timeIt(g, prod.run);
    rows.push({ variant, name: `bench core n=${n}`, ok: true, n, precision: 'high-core', ...t, tflops: flop / t.ms / 1e9 });
    prod.release();
    g.free(prod.out as GpuStorage);
  }
  g.free(av.storage);
  g.free(bv.storage);
  return rows;
}

async function child(variant: string, mods: Partial<SgmatConfig>): Promise<void> {
  const emit = (r: Row) => console.log(`RESULT ${JSON.stringify(r)}`);
  const g = await initWebGPU({ precision: 'high' });
  emit({
    variant,
    name: 'adapter',
    ok: g.tensorCores,
    tensorCores: g.info.tensorCores,
    configs: g.info.subgroupMatrixConfigs,
    features: g.info.features,
    sg: [g.info.subgroupMinSize, g.info.subgroupMaxSize],
    device: g.info.description,
    adapterInfo: (() => {
      const i = (g.device as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
      return i ? { vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description } : null;
    })(),
  });
  if (!g.tensorCores) return;
  if (variant === 'suite') {
    setSgmatConfig(null);
    setSgmatPatch(Object.keys(mods).length ? mods : null);
    const cases: [string, number[], number, number, number, number, number, number, boolean?][] = [
      ['64^3', [], 64, 64, 64, 1, 1, 0],
      ['partial 130x133x70', [], 130, 133, 70, 1, 1, 0],
      ['odd N 50x45x37', [], 50, 45, 37, 1, 1, 0],
      ['batched 3x2 33x29x47', [3, 2], 33, 29, 47, 1, 1, 0],
      ['batched, B broadcast 4 65x31x129', [4], 65, 31, 129, 1, 1, 0, true],
      ['large values 1e6 x 3e5', [], 96, 80, 112, 1e6, 3e5, 0],
      ['tiny values 1e-6 x 2e-7', [], 96, 80, 112, 1e-6, 2e-7, 0],
      ['1 x 300 x 1', [], 1, 300, 1, 1, 1, 0],
      ['K=1 40x1x24', [], 40, 1, 24, 1, 1, 0],
      ['n=1024', [], 1024, 1024, 1024, 1, 1, 2000],
      ['2000x1000x1500 (wide tiles, partial)', [], 2000, 1000, 1500, 1, 1, 1500],
      // split-K (8 and 4 chunks as batches, then their sum)
      ['split-K 256x8192x512', [], 256, 8192, 512, 1, 1, 1500],
      ['split-K batched 2x 128x4096x256', [2], 128, 4096, 256, 1, 1, 1500],
    ];
    for (const [label, batch, M, K, N, sa, sb, samples, bcast] of cases)
      for (const aT of [false, true])
        for (const bT of [false, true]) {
          try {
            emit(
              await checkCase(g, variant, `${label} ${aT ? 'T' : 'N'}${bT ? 'T' : 'N'}`, batch, M, K, N, aT, bT, sa, sb, samples, bcast),
            );
          } catch (e) {
            emit({ variant, name: label, ok: false, msg: (e as Error).message });
          }
        }
    for (const n of [2048, 4096, 8192]) for (const r of await benchSize(g, variant, n, ['highest', 'high'])) emit(r);
    // the training's thinnest weight gradient (768² over 32768 tokens): split-K
    for (const r of await benchSize(g, variant, 0, ['highest', 'high'], [768, 32768, 768])) emit(r);
    return;
  }
  setSgmatConfig(configOf(variant, mods));
  emit(await checkCase(g, variant, 'partial 130x133x70 NN', [], 130, 133, 70, false, false, 1, 1, 0));
  emit(await checkCase(g, variant, 'n=512 TN', [], 512, 512, 512, true, false, 1, 1, 1000));
  for (const r of await benchSize(g, variant, 4096, ['high'])) emit(r);
}

// ---- parent ---------------------------------------------------------------------------------

function runVariant(variant: string, mods: Partial<SgmatConfig>, timeoutMs: number): Promise<Row[]> {
  return runChild<Row>([variant, JSON.stringify(mods)], { variant }, timeoutMs, (r) =>
    console.log(
      `  ${r.ok ? 'ok  ' : 'FAIL'} [${variant}] ${r.name}${r.tflops ? ` ${(r.tflops as number).toFixed(1)} TFLOP/s` : ''}${r.maxTerm !== undefined ? ` err ${(r.maxTerm as number).toExponential(2)}` : ''}${r.msg ? ` ${r.msg}` : ''}`,
    ),
  );
}

async function parent(): Promise<void> {
  const outDir = process.argv[2] && !VARIANTS[process.argv[2]] && process.argv[2] !== 'suite' ? process.argv[2] : undefined;
  const asked = process.argv.slice(outDir ? 3 : 2);
  const list = asked.length
    ? asked
    : [
        'simple-template',
        'small',
        'wide',
        'wide-pf',
        'wide-bk64',
        'wide-bk64-pf',
        'wide-128x256-pf',
        'wide-256x128-pf',
        'wide-64x128',
        'wide-64x128-pf',
        'wide-pad16',
        'suite',
      ];
  const timeoutMs = Number(process.env.FOXGATE_VARIANT_TIMEOUT_MS ?? 40000);
  const all: Row[] = [];
  const mods: Partial<SgmatConfig> = {};
  const passed = (v: string) => all.some((r) => r.variant === v && r.name.startsWith('partial') && r.ok);
  for (const v of list) {
    if (v !== 'suite' && !VARIANTS[v]) {
      console.log(`unknown variant ${v}`);
      continue;
    }
    // the defaults are the template spelling with the subgroup_id builtin and the diagnostic off;
    // the simple variants find what this Dawn accepts, and later variants use that
    if (v === 'simple-template' && !passed('simple-legacy')) {
      if (passed('simple-legacy-builtin')) mods.sgIndex = 'builtin';
      else if (passed('simple-legacy-bcast')) mods.sgIndex = 'broadcast-diag';
    }
    const rows = await runVariant(v, mods, v === 'suite' ? 3 * timeoutMs : timeoutMs);
    all.push(...rows);
    if (v === 'simple-template' && !passed('simple-template') && (passed('simple-legacy') || mods.sgIndex)) mods.spelling = 'legacy';
    if (outDir) writeFileSync(`${outDir}/matmul-high.json`, `${JSON.stringify(all, null, 1)}\n`);
  }
  console.log(`\nmods: ${JSON.stringify(mods)}`);
  console.log('variant          case                              TFLOP/s   ms      max err/term  rel L2');
  for (const r of all)
    if (r.name.startsWith('bench') || r.name.startsWith('partial') || !r.ok)
      console.log(
        `${r.variant.padEnd(16)} ${String(r.name).slice(0, 33).padEnd(33)} ${r.tflops ? (r.tflops as number).toFixed(1).padStart(7) : '       '} ${r.ms ? (r.ms as number).toFixed(3).padStart(7) : '       '} ${r.maxTerm !== undefined ? (r.maxTerm as number).toExponential(2).padStart(12) : '            '} ${r.relL2 !== undefined ? (r.relL2 as number).toExponential(2) : ''} ${r.ok ? '' : 'FAIL'}`,
      );
  const failed = all.filter((r) => !r.ok && r.variant === 'suite').length;
  console.log(`suite failures: ${failed}`);
}

if (process.argv[2] === '--child') await child(process.argv[3], JSON.parse(process.argv[4] ?? '{}') as Partial<SgmatConfig>);
else await parent();
process.exit(0);
