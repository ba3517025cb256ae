import { type Tensor, tensor, type WebGPUBackend } from '@foxgate/tensor';
import { destroyTestWebGPU, testWebGPU, throwsNaming } from '@foxgate/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { type Gate, type SkAttrs, sparsekAttnBackwardCpu, sparsekAttnForwardCpu } from '../src/sparsek/attention-cpu.js';
import { type SkBwdConfig, sparsekAttnBackwardWebGPU } from '../src/sparsek/attention-wgsl-backward.js';
import { normals } from './util/sparsek-data.js';

/**
 * The WGSL backward of SPARSEK attention (`sparsekAttnBackwardWebGPU`, called directly) against
 * the float64 host backward `sparsekAttnBackwardCpu`: lse and τ come from the host forward (cast to
 * float32; τ = −3.0e38 where the prefix has ≤ k entries, NaN where the prefix is empty: it must not
 * be read). Inputs are float32 values; u is redrawn until no u_j lies within 1e-4 of τ_i or τ_i + 1
 * (at such ties the support, or the fractional set, flips between float32 and float64). Every gate,
 * window 0/1/5, a fractional, an integer and a whole-prefix budget, the device's block shape and a
 * tiny one (many blocks, several candidate tiles per scan chunk, partial tiles). dk, dv and du are
 * summed by atomic adds in a run-dependent order: compared with a tolerance. The float64 finite
 * differences of all four gradients (CPU route) are in sparsek-attention.test.ts.
 */
const gpu = await testWebGPU();
afterAll(destroyTestWebGPU);

const GATES: Gate[] = ['kv', 'v', 'logit'];
const TINY: SkBwdConfig = { bq: 4, bk: 4, nt: 16, tm: 1, tn: 1 };
const SENTINEL = -3.0e38;
// the first test of a block shape compiles its pipeline: lavapipe takes ~40 s per kernel on an idle
// 2-core machine (the suite builds three), several times that under load
const COMPILE_TIMEOUT = 900_000;

const f32 = (x: Float64Array) => Float64Array.from(Float32Array.from(x));

interface Case {
  a: SkAttrs;
  q: Float64Array;
  k: Float64Array;
  v: Float64Array;
  u: Float64Array;
  dO: Float64Array;
}

/** Smallest |u_j − τ_i| and |u_j − τ_i − 1| over the older positions j ≤ i − w (τ_i finite). */
function tieGap(u: Float64Array, tau: Float64Array, a: SkAttrs): number {
  const { B, T, H } = a.dims;
  let gap = Number.POSITIVE_INFINITY;
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let i = a.window; i < T; i++) {
        const t = tau[(b * H + h) * T + i];
        if (!Number.isFinite(t)) continue;
        for (let j = 0; j <= i - a.window; j++) {
          const d = u[(b * T + j) * H + h] - t;
          gap = Math.min(gap, Math.abs(d), Math.abs(d - 1));
        }
      }
  return gap;
}

function makeCase(B: number, T: number, H: number, D: number, budget: number, window: number, gate: Gate, seed: number): Case {
  const a: SkAttrs = { dims: { B, T, H, D }, budget, window, gate, scale: 1 / Math.sqrt(D) };
  const n = B * T * H * D;
  const base = { a, q: f32(normals(n, seed)), k: f32(normals(n, seed + 1)), v: f32(normals(n, seed + 2)), dO: f32(normals(n, seed + 3)) };
  for (let s = 0; s < 200; s++) {
    const u = f32(normals(B * T * H, seed * 1000 + s + 7, 1.5));
    const { tau } = sparsekAttnForwardCpu(base.q, base.k, base.v, u, a);
    if (tieGap(u, tau, a) > 1e-4) return { ...base, u };
  }
  throw new Error('no well-separated u in 200 draws');
}

function relErr(got: ArrayLike<number>, want: ArrayLike<number>): { err: number; at: number } {
  let scale = 1;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  let err = 0;
  let at = -1;
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i] - want[i]) / (scale * 1e-5 + Math.abs(want[i]) * 1e-4);
    if (!(e <= err)) {
      err = e;
      at = i;
    }
  }
  return { err, at };
}

async function runGpu(backend: WebGPUBackend, c: Case, cfg?: SkBwdConfig, tauOverride?: Float64Array) {
  const { B, T, H, D } = c.a.dims;
  const fwd = sparsekAttnForwardCpu(c.q, c.k, c.v, c.u, c.a);
  const want = sparsekAttnBackwardCpu(c.q, c.k, c.v, c.u, c.dO, fwd.lse, fwd.tau, c.a);
  const tauDev = Float32Array.from(tauOverride ?? fwd.tau, (t) => (t === Number.NEGATIVE_INFINITY ? SENTINEL : t));
  const rows = [B, T, H, D];
  const put = (x: ArrayLike<number>, shape: number[]) => tensor(Float32Array.from(x), shape, { dtype: 'float32', backend });
  const inputs = {
    q: put(c.q, rows),
    k: put(c.k, rows),
    v: put(c.v, rows),
    u: put(c.u, [B, T, H]),
    dO: put(c.dO, rows),
    o: put(fwd.o, rows),
    lse: put(fwd.lse, [B, H, T]),
    tau: put(tauDev, [B, H, T]),
  };
  const g = sparsekAttnBackwardWebGPU(backend, inputs, c.a, cfg);
  const read = async (t: Tensor) => Float64Array.from((await t.data()) as Float32Array);
  const got = { dq: await read(g.dq), dk: await read(g.dk), dv: await read(g.dv), du: await read(g.du) };
  for (const t of [...Object.values(inputs), ...Object.values(g)]) t.dispose();
  return { got, want, fwd };
}

describe.skipIf(!gpu)('sparsekAttnBackwardWebGPU vs the float64 host backward', () => {
  const backend = gpu as WebGPUBackend;
  const budgets = [
    { name: 'fractional k', k: 2.5 },
    { name: 'integer k', k: 3 },
    { name: 'k ≥ prefix', k: 200 },
  ];
  let seed = 1;
  for (const gate of GATES) {
    for (const window of [0, 1, 5]) {
      for (const b of budgets) {
        const s = seed++;
        it(
          `${gate}, window ${window}, ${b.name}`,
          async () => {
            // B=2, T=37, H=2 on the device's block shape, B=1, T=29, H=3 on the tiny one; D=8 (vec4 rows)
            // except for window 1 on the tiny blocks: D=5 (scalar rows, a partial vec4 group)
            for (const [shape, cfg] of [
              [[2, 37, 2, 8], undefined],
              [[1, 29, 3, window === 1 ? 5 : 8], TINY],
            ] as const) {
              const c = makeCase(shape[0], shape[1], shape[2], shape[3], b.k, window, gate, s * 10 + shape[3]);
              const { got, want } = await runGpu(backend, c, cfg);
              for (const key of ['dq', 'dk', 'dv', 'du'] as const) {
                const { err, at } = relErr(got[key], want[key]);
                expect(
                  err,
                  `${key}[${at}] = ${got[key][at]}, want ${want[key][at]} (${cfg ? 'tiny' : 'device'} blocks)`,
                ).toBeLessThanOrEqual(1);
              }
              if (b.k < 100) expect(want.du.some((x) => Math.abs(x) > 1e-3)).toBe(true);
              else for (const x of got.du) expect(x).toBe(0);
            }
          },
          COMPILE_TIMEOUT,
        );
      }
    }
  }

  it('long rows: candidates span several scan chunks of the device block shape (T = 700, k = 24, window 16)', async () => {
    for (const gate of GATES) {
      const c = makeCase(1, 700, 1, 8, 24, 16, gate, 77);
      const { got, want } = await runGpu(backend, c);
      for (const key of ['dq', 'dk', 'dv', 'du'] as const) {
        const { err, at } = relErr(got[key], want[key]);
        expect(err, `${gate} ${key}[${at}] = ${got[key][at]}, want ${want[key][at]}`).toBeLessThanOrEqual(1);
      }
    }
  });

  it('a NaN score: rows whose τ is NaN give NaN dq, the rows before them match', async () => {
    const c = makeCase(1, 24, 1, 8, 2, 2, 'kv', 5);
    const bad = 9;
    c.u[bad] = Number.NaN;
    for (const cfg of [undefined, TINY]) {
      const { got, want, fwd } = await runGpu(backend, c, cfg);
      for (let i = 0; i < 24; i++) {
        const row = Array.from(got.dq.subarray(i * 8, i * 8 + 8));
        if (i >= 2 && Number.isNaN(fwd.tau[i])) for (const x of row) expect(x).toBeNaN();
        else for (let x = 0; x < 8; x++) expect(row[x]).toBeCloseTo(want.dq[i * 8 + x], 4);
      }
      expect(Number.isNaN(fwd.tau[bad + 2])).toBe(true);
    }
  });

  it('T = 0 gives empty gradients without a dispatch', async () => {
    const a: SkAttrs = { dims: { B: 2, T: 0, H: 3, D: 4 }, budget: 1, window: 1, gate: 'kv', scale: 1 };
    const mk = (shape: number[]) => tensor(new Float32Array(0), shape, { dtype: 'float32', backend });
    const rows = [2, 0, 3, 4];
    const t = {
      q: mk(rows),
      k: mk(rows),
      v: mk(rows),
      u: mk([2, 0, 3]),
      dO: mk(rows),
      o: mk(rows),
      lse: mk([2, 3, 0]),
      tau: mk([2, 3, 0]),
    };
    const g = sparsekAttnBackwardWebGPU(backend, t, a);
    expect(g.dq.shape).toEqual(rows);
    expect(g.du.shape).toEqual([2, 0, 3]);
    expect((await g.dk.data()).length).toBe(0);
    for (const x of [...Object.values(t), ...Object.values(g)]) x.dispose();
  });

  it('refuses float64 and wrong shapes with one line', () => {
    const c = makeCase(1, 4, 1, 4, 1, 1, 'kv', 3);
    const mk = (n: number, shape: number[]) => tensor(new Float32Array(n), shape, { dtype: 'float32', backend });
    const t = {
      q: mk(16, [1, 4, 1, 4]),
      k: mk(16, [1, 4, 1, 4]),
      v: mk(16, [1, 4, 1, 4]),
      u: mk(4, [1, 4, 1]),
      dO: mk(16, [1, 4, 1, 4]),
      o: mk(16, [1, 4, 1, 4]),
      lse: mk(4, [1, 1, 4]),
      tau: mk(4, [1, 1, 4]),
    };
    const q64 = tensor(new Float64Array(16), [1, 4, 1, 4], { dtype: 'float64' });
    throwsNaming(
      () => sparsekAttnBackwardWebGPU(backend, { ...t, q: q64 }, c.a),
      /^sparsekAttention: backward input q lives on the cpu backend, not on WebGPU$/,
    );
    throwsNaming(
      () => sparsekAttnBackwardWebGPU(backend, { ...t, lse: t.u }, c.a),
      /^sparsekAttention: backward input lse must have shape \[1,1,4\], got \[1,4,1\]$/,
    );
    for (const x of [...Object.values(t), q64]) x.dispose();
  });
});
