import { gradcheck } from '@foxgate/autograd';
import { type Backend, mul, sum, type Tensor, tensor, type WebGPUBackend } from '@foxgate/tensor';
import { destroyTestWebGPU, testWebGPU, throwsNaming } from '@foxgate/testing';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type FoxTileOverrides, foxForwardCpu, foxTilesFor, type HostMatrix, jsGemm, setFoxTiles } from '../src/dev.js';
import { forgettingAttention, softmaxAttention } from '../src/index.js';
import { ALL_CLOSE, compareResults, type FoxProblem, type FoxResult, logsigmoid, normals, problem, runFox, uniforms } from './util/fox.js';

/**
 * Sliding-window attention (`window`: query position p attends to keys p − window < j ≤ p) for
 * softmax and forgetting attention: every fused kernel family (CPU; WGSL tiled and wide, the
 * hardware code path included) against the float64 reference, with and without ACP; window 1
 * by hand; a window covering every pair bit-identical to none; finite differences; the tiles
 * counted and (CPU) the score work skipped.
 */
const gpu = await testWebGPU();
afterAll(destroyTestWebGPU);
afterEach(() => setFoxTiles({}));

type Variant = { gated: boolean; acp?: boolean };
const VARIANTS: [string, Variant][] = [
  ['softmax', { gated: false }],
  ['forgetting', { gated: true }],
  ['forgetting + ACP', { gated: true, acp: true }],
];

/**
 * Shapes with partial tiles (T not a multiple of 16 or 64), tiles wholly before the window
 * (skipped) and windows that end inside a tile; Tq < Tk puts queries after a cache of keys.
 */
const cases: [label: string, p: FoxProblem, window: number][] = [
  ['T=150 window 1', problem(1, 150, 150, 2, 8, 3, [-3, 1], 0.5), 1],
  ['T=150 window 20', problem(1, 150, 150, 2, 8, 5, [-3, 1], 0.5), 20],
  ['T=150 window 64', problem(1, 150, 150, 2, 8, 7, [-3, 1], 0.5), 64],
  ['Tq=70 Tk=203 window 37, B=2', problem(2, 70, 203, 1, 12, 9, [-3, 1], 0.5), 37],
  ['T=149 window 148 (= Tk − 1: only the pair (148, 0) is cut)', problem(1, 149, 149, 1, 6, 11, [-2, 2], 0.5), 148],
];

/** Fraction of 64×64 tiles computed: those holding a kept pair, over the causal tiles. */
function tileFraction(p: FoxProblem, window: number): number {
  const off = p.Tk - p.Tq;
  let kept = 0;
  let total = 0;
  for (let qb = 0; qb * 64 < p.Tq; qb++)
    for (let kb = 0; kb * 64 < p.Tk; kb++) {
      let causal = false;
      let inside = false;
      for (let i = qb * 64; i < Math.min(p.Tq, qb * 64 + 64); i++)
        for (let j = kb * 64; j < Math.min(p.Tk, kb * 64 + 64); j++) {
          if (j > i + off) continue;
          causal = true;
          if (j > i + off - window) inside = true;
        }
      if (causal) total++;
      if (inside) kept++;
    }
  return kept / total;
}

const refs = new Map<string, Promise<FoxResult>>();
function reference(label: string, p: FoxProblem, window: number, v: Variant): Promise<FoxResult> {
  const key = `${label}|${v.gated}|${v.acp}`;
  let r = refs.get(key);
  if (!r) {
    r = runFox(p, 'cpu', 'float64', { impl: 'reference', window, stats: true, ...v });
    refs.set(key, r);
  }
  return r;
}

describe.each(cases)('%s', (label, p, window) => {
  it.each(VARIANTS)('%s: the reference counts the tiles holding a kept pair (ACP aside)', async (_n, v) => {
    const r = await reference(label, p, window, v);
    // a float32 scalar
    if (!v.acp) expect(r.fraction).toBeCloseTo(tileFraction(p, window), 6);
    else expect(r.fraction).toBeLessThanOrEqual(tileFraction(p, window) + 1e-6);
  });

  it.each(VARIANTS)('%s: fused CPU (float64 to 1e-10, float32) matches the float64 reference', async (_n, v) => {
    const ref = await reference(label, p, window, v);
    const f64 = await runFox(p, 'cpu', 'float64', { window, stats: true, ...v });
    expect(compareResults(f64, ref, 1e-10, 1e-9)).toEqual(ALL_CLOSE);
    expect(f64.fraction).toBe(ref.fraction);
    const f32 = await runFox(p, 'cpu', 'float32', { window, stats: true, ...v });
    expect(compareResults(f32, ref)).toEqual(ALL_CLOSE);
    expect(f32.fraction).toBe(ref.fraction);
  });

  it.skipIf(!gpu).each(VARIANTS)('%s: fused WebGPU (default kernels) matches the float64 reference', async (_n, v) => {
    const ref = await reference(label, p, window, v);
    const r = await runFox(p, gpu as unknown as Backend, 'float32', { window, stats: true, ...v });
    expect(compareResults(r, ref)).toEqual(ALL_CLOSE);
    expect(r.fraction).toBe(ref.fraction);
  });
});

describe('window 1: each query sees only its own position', () => {
  const p = problem(1, 40, 77, 2, 5, 21, [-3, 1]);
  const targets: [string, Backend | string][] = [['cpu', 'cpu']];
  if (gpu) targets.push(['webgpu', gpu as unknown as Backend]);
  it.each(targets)('o_i = v_p, dv_p = dO_i, dq = dk = dlogF = 0 (%s)', async (_n, backend) => {
    const { Tq, Tk, H, D } = p;
    const r = await runFox(p, backend, backend === 'cpu' ? 'float64' : 'float32', { window: 1 });
    const tol = backend === 'cpu' ? 1e-12 : 1e-5;
    for (let i = 0; i < Tq; i++)
      for (let x = 0; x < H * D; x++) {
        const at = i * H * D + x;
        const pos = (i + Tk - Tq) * H * D + x;
        expect(Math.abs(r.o[at] - p.v[pos])).toBeLessThanOrEqual(tol * (1 + Math.abs(p.v[pos])));
        expect(Math.abs(r.dv[pos] - p.dO[at])).toBeLessThanOrEqual(tol * (1 + Math.abs(p.dO[at])));
      }
    for (let j = 0; j < (Tk - Tq) * H * D; j++) expect(r.dv[j]).toBe(0); // keys no query sees
    for (const g of [r.dq, r.dk, r.dlogF as Float64Array]) expect(Math.max(...g.map(Math.abs))).toBeLessThanOrEqual(tol);
  });
});

describe('a window covering every causal pair (window ≥ Tk) is full causal attention, bit for bit', () => {
  const p = problem(1, 50, 90, 2, 8, 23, [-3, 1], 0.5);
  const targets: [string, Backend | string, 'float32' | 'float64'][] = [['cpu', 'cpu', 'float64']];
  if (gpu) targets.push(['webgpu', gpu as unknown as Backend, 'float32']);
  it.each(targets)('%s, fused and reference, gated and not', async (_n, backend, dtype) => {
    for (const impl of ['fused', 'reference'] as const)
      for (const gated of [false, true]) {
        const none = await runFox(p, backend, dtype, { impl, gated, stats: true });
        for (const window of [90, 1000]) {
          const w = await runFox(p, backend, dtype, { impl, gated, window, stats: true });
          expect(compareResults(w, none, 0, 0), `${impl} gated=${gated} window=${window}`).toEqual(ALL_CLOSE);
          expect(w.fraction).toBe(1);
        }
      }
  });
});

describe('work skipped', () => {
  it('stats: T=512, window 64 computes 15 of the 36 causal 64×64 tiles (each query tile: its own and the one before)', () => {
    const x = tensor(normals(512 * 4, 1), [1, 512, 1, 4]);
    for (const impl of ['fused', 'reference'] as const) {
      const { out, stats } = softmaxAttention(x, x, x, { window: 64, stats: true, impl });
      expect(stats.computedBlocks.itemSync()).toBe(15);
      expect(stats.totalBlocks).toBe(36);
      for (const t of [out, stats.computedBlocks, stats.fraction]) t.dispose();
    }
    x.dispose();
  });

  it('the fused CPU kernel forms O(T·window) scores, not O(T²)', () => {
    const T = 4096;
    const D = 4;
    const dims = { B: 1, Tq: T, Tk: T, H: 1, D };
    const q = normals(T * D, 2);
    let scores = 0;
    const counting = (a: HostMatrix, b: HostMatrix) => {
      if (b.rows === D) scores += a.batch * a.rows * b.cols; // the q·kᵀ products
      return jsGemm(a, b);
    };
    for (const window of [1, 64, 200, 700]) {
      scores = 0;
      const r = foxForwardCpu(q, q, q, null, dims, { scale: 0.5, window, gemm: counting });
      expect(scores, `window ${window}`).toBeLessThanOrEqual(T * (1.5 * window + 2 * 64));
      expect(scores).toBeGreaterThanOrEqual(T * Math.min(window, 64));
      expect(r.computedBlocks).toBeLessThanOrEqual((T / 64) * (Math.ceil(window / 64) + 1));
      expect(r.totalBlocks).toBe(((T / 64) * (T / 64 + 1)) / 2);
    }
  });
});

describe('gradcheck (float64, finite differences) with a window', () => {
  const f64 = (a: Float64Array, shape: number[]) => tensor(a, shape, { dtype: 'float64' });
  // T = 70: two 64-tiles; window 5 skips the first key tile for the queries of the second
  const T = 70;
  const inputs = () => [
    f64(normals(T * 2, 31), [1, T, 1, 2]),
    f64(normals(T * 2, 32), [1, T, 1, 2]),
    f64(normals(T * 2, 33), [1, T, 1, 2]),
    f64(uniforms(T, 34, -1, 3).map(logsigmoid), [1, T, 1]),
  ];
  const w = f64(normals(T * 2, 35), [1, T, 1, 2]);
  const opts = { eps: 1e-6, atol: 1e-7, rtol: 1e-5, raise: false };
  it.each(['reference', 'fused'] as const)('softmaxAttention and forgettingAttention (%s)', (impl) => {
    const s = (a: Tensor, b: Tensor, c: Tensor) => sum(mul(softmaxAttention(a, b, c, { impl, window: 5 }), w));
    const rs = gradcheck(s, inputs().slice(0, 3), opts);
    expect(rs.ok, rs.message).toBe(true);
    const f = (a: Tensor, b: Tensor, c: Tensor, d: Tensor) => sum(mul(forgettingAttention(a, b, c, d, { impl, window: 5, scale: 0.8 }), w));
    const rf = gradcheck(f, inputs(), opts);
    expect(rf.ok, rf.message).toBe(true);
  });
});

describe('bad windows are one line', () => {
  const x = tensor(new Float32Array(8 * 4), [1, 8, 1, 4]);
  const lf = tensor(new Float32Array(8), [1, 8, 1]);
  it.each([0, -3, 1.5, Number.NaN, '4', null])('window %s', (window) => {
    throwsNaming(
      () => softmaxAttention(x, x, x, { window } as never),
      /^softmaxAttention: opts.window must be an integer ≥ 1/,
      String(window),
    );
    throwsNaming(() => forgettingAttention(x, x, x, lf, { window } as never), /^forgettingAttention: opts.window must be an integer ≥ 1/);
  });
});

/**
 * The hardware kernels (wide, and tiled with hardware tiles), run on lavapipe with `software`
 * switched off as in `wgsl-tiles.test.ts`, on a problem with several 128-row tiles.
 */
async function asHardware(fn: () => Promise<void>): Promise<void> {
  const backend = gpu as unknown as { software: boolean };
  const soft = backend.software;
  backend.software = false;
  try {
    await fn();
  } finally {
    backend.software = soft;
  }
}

describe.skipIf(!gpu)('windowed hardware kernels (hardware code path on lavapipe)', () => {
  // two 128-row tiles of queries and keys, the window ending inside a tile; one variant per
  // configuration (lavapipe compiles each unrolled kernel for tens of seconds)
  const D = 8;
  const p = problem(1, 150, 211, 1, D, 47, [-3, 1], 0.5);
  const window = 70;
  const wide = { bk: 64, tm: 4, pf: true, sg: true };
  const configs: [string, FoxTileOverrides, Variant][] = [
    [
      'wide forward (128 keys), dQ and dK/dV (the hardware defaults at D ≤ 64 with subgroups), forgetting + ACP',
      { wide: { ...wide, bk: 128 }, wideDq: wide, wideDkv: wide },
      VARIANTS[2][1],
    ],
    [
      'wide, 8 rows per thread, not pipelined; dK/dV accumulating dQ (fuseDq), softmax',
      { wide: { bk: 32 }, wideDq: { bk: 32 }, wideDkv: { bk: 32, fuseDq: true } },
      VARIANTS[0][1],
    ],
    [
      'tiled hardware tiles, pipelined, forgetting',
      {
        fwd: { bq: 64, bk: 32, tm: 4, tn: 2, pf: true },
        dkv: { bq: 32, bk: 32, tm: 4, tn: 2, pf: true },
        dq: { bq: 32, bk: 32, tm: 4, tn: 2, pf: true },
      },
      VARIANTS[1][1],
    ],
  ];
  it.each(configs)(
    '%s',
    (_label, tiles, v) =>
      asHardware(async () => {
        setFoxTiles(tiles);
        const used = foxTilesFor(gpu as unknown as WebGPUBackend, D);
        for (const [kind, t] of Object.entries(tiles)) expect(used[kind as keyof typeof used], `${kind} tiles fit`).toEqual(t);
        const c = await runFox(p, 'cpu', 'float64', { window, stats: true, ...v });
        const r = await runFox(p, gpu as unknown as Backend, 'float32', { window, stats: true, ...v });
        expect(compareResults(r, c)).toEqual(ALL_CLOSE);
        expect(r.fraction).toBeCloseTo(c.fraction as number, 6);
        expect(c.fraction).toBeLessThan(1);
      }),
    480_000,
  );
});
