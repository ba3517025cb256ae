/*
 * SPARSEK on a hardware WebGPU adapter against the float64 CPU kernels: `sparsek(z, k)` (p and dz),
 * and SPARSEK attention (the τ + attention forward against `sparsekAttnForwardCpu`, the WGSL
 * backward against `sparsekAttnBackwardCpu`, and the public fused route's output and gradients
 * through autograd against the CPU route). The test suite runs these on lavapipe, where the
 * kernels take their software variants (64-thread τ kernel, runtime head dim, scalar rows, small
 * tiles, one backward pipeline for all gates); here every case runs on the adapter's defaults
 * (256-thread τ kernel with subgroups, constant D and vec4 rows, the hardware tiles), plus the
 * opt-in variants (no subgroups, a small workgroup part of the active set: the spill to the
 * global scratch) and an active set beyond the default 4096 entries (the spill at default sizes).
 *
 * Tolerances and data rules are those of the test files (sparsek-webgpu.test.ts,
 * sparsek-attention-webgpu*.test.ts), whose helpers are not importable (test files):
 * - forward: o within 2e-5 + 2e-4·|ref|, lse 2e-5 + 2e-5·|ref|, on the rows whose every older
 *   score is ≥ GAP = 2e-3 from the CPU's τ_i (the output jumps when a score crosses τ: an entry
 *   entering the support adds exp(s) to the normaliser), all rows for gate 'logit' (continuous in
 *   τ); the gates clip(u − τ, 0, 1) of every prefix entry from the GPU's τ within 2e-5·(1 + |τ|);
 * - backward kernel (given the CPU's o, lse and τ cast to float32): |got − want| ≤ 1e-5·max(1,
 *   max|want|) + 1e-4·|want| per element, on data whose scores are ≥ 2e-6·(1 + |τ_i|) from τ_i
 *   and τ_i + 1 (the float32 rounding of τ, ≤ 6e-8·|τ|, is then the only difference of the
 *   support and the fractional set; the test file's 1e-4 cannot be met by random data at T = 2048);
 * - public route: every row ≥ GAP from τ (data re-drawn), o and the gradients of q, k, v, u
 *   within 5e-5 + 5e-4·|ref|;
 * - sparsek(z, k): p and dz within 2e-5 + 1e-4·|ref|, each row summing to min(k, m) within
 *   1e-4·max(1, k); data re-drawn until no z is within 1e-5·(1 + |τ|) of τ or τ + 1.
 *
 * `checkSparsek(true)` (or FOXGATE_CHECK_SMALL=1) picks small cases for software adapters.
 */

import { sparsekAttention } from '../../packages/attention/src/sparsek/attention.js';
import type { SkAttrs } from '../../packages/attention/src/sparsek/attention-cpu.js';
import { sparsekAttnBackwardCpu, sparsekAttnForwardCpu } from '../../packages/attention/src/sparsek/attention-cpu.js';
import { type SkForwardOverrides, sparsekAttnForwardWebGPU } from '../../packages/attention/src/sparsek/attention-webgpu.js';
import { type SkBwdConfig, sparsekAttnBackwardWebGPU } from '../../packages/attention/src/sparsek/attention-wgsl-backward.js';
import { TAU_SENTINEL } from '../../packages/attention/src/sparsek/attention-wgsl-threshold.js';
import { PrefixSelector } from '../../packages/attention/src/sparsek/project.js';
import { mismatch, runSparsekGrad } from '../../packages/attention/test/util/sparsek-compare.js';
import { normals } from '../../packages/attention/test/util/sparsek-data.js';
import { valueAndGrad } from '../../packages/autograd/src/index.js';
import { initWebGPU, mul, sum, type Tensor, tensor, type WebGPUBackend } from '../../packages/tensor/src/index.js';

type Result = { name: string; ok: boolean; msg?: string };
type Gate = SkAttrs['gate'];
const GATES: Gate[] = ['kv', 'v', 'logit'];
const GAP = 2e-3;

const f32 = (a: Float64Array) => Float64Array.from(Float32Array.from(a));
const secs = (t0: number) => ((performance.now() - t0) / 1000).toFixed(1);

/** The backward tolerance: |got − want| ≤ 1e-5·max(1, max|want|) + 1e-4·|want| (null when it holds). */
function bwdMismatch(got: ArrayLike<number>, want: ArrayLike<number>, what: string): string | null {
  let scale = 1;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  return mismatch(got, want, 1e-5 * scale, 1e-4, what);
}

// ---------------------------------------------------------------- sparsek(z, k)

/** τ of each row from the CPU's p (any fractional entry: τ = z − p); NaN for rows without one. */
function rowTaus(z: Float64Array, p: Float64Array, R: number, m: number): Float64Array {
  const tau = new Float64Array(R).fill(Number.NaN);
  for (let r = 0; r < R; r++)
    for (let i = 0; i < m; i++) {
      const x = p[r * m + i];
      if (x > 0 && x < 1) {
        tau[r] = z[r * m + i] - x;
        break;
      }
    }
  return tau;
}

async function checkProjection(gpu: WebGPUBackend, small: boolean, rec: Recorder): Promise<void> {
  const cases: { name: string; R: number; m: number; k: number | number[]; scale: number }[] = [
    { name: 'short rows', R: 5, m: 10, k: 3, scale: 1 },
    { name: 'rows of 64 (64 threads)', R: 40, m: 64, k: 7.5, scale: 1 },
    { name: 'rows of 65 (256 threads)', R: 40, m: 65, k: 7.5, scale: 1 },
    { name: 'rows longer than the workgroup', R: 3, m: 1000, k: 20, scale: 2 },
    { name: 'many fractional entries', R: 4, m: 700, k: 40, scale: 0.02 },
    { name: 'k = 1', R: 8, m: 50, k: 1, scale: 1 },
    { name: 'non-integer k', R: 6, m: 33, k: 2.5, scale: 1 },
    { name: 'per-row budgets incl. k ≥ m', R: 6, m: 17, k: [1, 2, 5, 16, 17, 30], scale: 1 },
    { name: 'one-entry rows', R: 4, m: 1, k: 1, scale: 1 },
    ...(small
      ? [{ name: 'long rows', R: 2, m: 3000, k: 100, scale: 1 }]
      : [
          { name: 'long rows', R: 4, m: 20000, k: 300, scale: 1 },
          { name: 'long flat rows', R: 2, m: 8192, k: 1000, scale: 0.05 },
          { name: 'many rows (folded grid)', R: 70000, m: 4, k: 2, scale: 1 },
          { name: 'long rows, per-row budgets', R: 4, m: 4096, k: [1, 64, 2048, 5000], scale: 1.5 },
        ]),
  ];
  for (const c of cases) {
    await rec(`sparsek ${c.name}: R=${c.R} m=${c.m} k=${Array.isArray(c.k) ? `[${c.k}]` : c.k} (p, dz vs float64)`, async () => {
      const g = normals(c.R * c.m, c.R * 37 + c.m);
      let z = new Float64Array(0);
      let want: { p: Float64Array; dz: Float64Array } | null = null;
      // re-drawn until no entry sits within 1e-5·(1 + |τ|) of a breakpoint τ or τ + 1
      for (let s = 0; s < 20 && !want; s++) {
        z = f32(normals(c.R * c.m, c.R * 31 + c.m + 1000 * s, c.scale));
        const w = await runSparsekGrad(z, [c.R, c.m], c.k, g, 'cpu');
        const tau = rowTaus(z, w.p, c.R, c.m);
        let clear = true;
        for (let r = 0; r < c.R && clear; r++) {
          if (Number.isNaN(tau[r])) continue;
          const gap = 1e-5 * (1 + Math.abs(tau[r]));
          for (let i = 0; i < c.m && clear; i++) {
            const d = z[r * c.m + i] - tau[r];
            if (Math.abs(d) < gap || Math.abs(d - 1) < gap) clear = false;
          }
        }
        if (clear) want = w;
      }
      if (!want) return 'no data clear of the breakpoints in 20 draws';
      const got = await runSparsekGrad(z, [c.R, c.m], c.k, g, gpu);
      const bad = mismatch(got.p, want.p, 2e-5, 1e-4, 'p') ?? mismatch(got.dz, want.dz, 2e-5, 1e-4, 'dz');
      if (bad) return bad;
      for (let r = 0; r < c.R; r++) {
        let s = 0;
        for (let i = 0; i < c.m; i++) s += got.p[r * c.m + i];
        const kr = Array.isArray(c.k) ? c.k[r] : c.k;
        if (!(Math.abs(s - Math.min(kr, c.m)) < 1e-4 * Math.max(1, kr))) return `row ${r} sums to ${s}, not ${Math.min(kr, c.m)}`;
      }
      return null;
    });
  }
}

// ---------------------------------------------------------------- SPARSEK attention

interface Data {
  q: Float64Array;
  k: Float64Array;
  v: Float64Array;
  u: Float64Array;
  dO: Float64Array;
  a: SkAttrs;
  /** The CPU's τ `[B,H,T]` (NaN for i < window, −∞ for a prefix of ≤ k entries). */
  tau: Float64Array;
}

function attrs(B: number, T: number, H: number, D: number, budget: number, window: number, gate: Gate): SkAttrs {
  return { dims: { B, T, H, D }, budget, window, gate, scale: 1 / Math.sqrt(D) };
}

/** τ `[B,H,T]` of the CPU's PrefixSelector (no attention). */
function taus(u: Float64Array, a: SkAttrs): Float64Array {
  const { B, T, H } = a.dims;
  const tau = new Float64Array(B * H * T).fill(Number.NaN);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const sel = new PrefixSelector(u, (j) => (b * T + j) * H + h, a.budget, T);
      for (let i = a.window; i < T; i++) tau[(b * H + h) * T + i] = sel.step(i - a.window);
    }
  return tau;
}

/**
 * Per (b, h, i) row of `[B,H,T]`: the smallest |u_j − τ_i| over the older positions j ≤ i − window
 * (and, with `plusOne`, |u_j − τ_i − 1|), relative to `1 + |τ_i|` when `relative`; ∞ where τ_i is not finite.
 */
function rowGaps(u: Float64Array, tau: Float64Array, a: SkAttrs, plusOne: boolean, relative: boolean): Float64Array {
  const { B, T, H } = a.dims;
  const gaps = new Float64Array(B * H * T).fill(Number.POSITIVE_INFINITY);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let i = a.window; i < T; i++) {
        const r = (b * H + h) * T + i;
        const t = tau[r];
        if (!Number.isFinite(t)) continue;
        let g = Number.POSITIVE_INFINITY;
        for (let j = 0; j <= i - a.window; j++) {
          const d = u[(b * T + j) * H + h] - t;
          g = Math.min(g, Math.abs(d), plusOne ? Math.abs(d - 1) : g);
        }
        gaps[r] = relative ? g / (1 + Math.abs(t)) : g;
      }
  return gaps;
}

/**
 * float32-representable data: q, k, v, dO normals, scores `uOf(n, seed)` (default normals × 1.5).
 * `need`: 'stable' re-draws the scores until every row is ≥ GAP from τ (the public route), 'tie'
 * until every score is ≥ 2e-6·(1 + |τ_i|) from τ_i and τ_i + 1 (the backward kernel), 'none' takes
 * the first draw (the forward, compared on its stable rows).
 */
function makeData(a: SkAttrs, seed: number, need: 'stable' | 'tie' | 'none', uOf?: (n: number, s: number) => Float64Array): Data {
  const { B, T, H, D } = a.dims;
  const n = B * T * H * D;
  const base = {
    a,
    q: f32(normals(n, seed * 7)),
    k: f32(normals(n, seed * 7 + 1)),
    v: f32(normals(n, seed * 7 + 2)),
    dO: f32(normals(n, seed * 7 + 4)),
  };
  for (let s = seed; s < seed + 60; s++) {
    const u = f32(uOf ? uOf(B * T * H, s) : normals(B * T * H, s * 7 + 3, 1.5));
    const tau = taus(u, a);
    if (need === 'none') return { ...base, u, tau };
    const gaps = need === 'stable' ? rowGaps(u, tau, a, false, false) : rowGaps(u, tau, a, true, true);
    if (gaps.every((g) => g >= (need === 'stable' ? GAP : 2e-6))) return { ...base, u, tau };
  }
  throw new Error(`no ${need} data in 60 draws of the scores`);
}

const put = (gpu: WebGPUBackend, x: ArrayLike<number>, shape: number[]) =>
  tensor(Float32Array.from(x), shape, { dtype: 'float32', backend: gpu });
const read = async (t: Tensor) => Float64Array.from(await t.data());

/** The gates of every prefix entry from the GPU's τ against the CPU's; τ itself where it is unique. */
function tauMismatch(gpuTau: ArrayLike<number>, cpuTau: Float64Array, u: Float64Array, a: SkAttrs): string | null {
  const { B, T, H } = a.dims;
  const clip = (x: number) => Math.min(1, Math.max(0, x));
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let i = 0; i < T; i++) {
        const r = (b * H + h) * T + i;
        const g = gpuTau[r];
        const c = cpuTau[r];
        if (i < a.window || c === Number.NEGATIVE_INFINITY) {
          if (g !== Math.fround(TAU_SENTINEL)) return `τ[${b},${h},${i}] = ${g}, expected the sentinel`;
          continue;
        }
        if (Number.isNaN(c)) {
          if (!Number.isNaN(g)) return `τ[${b},${h},${i}] = ${g}, expected NaN`;
          continue;
        }
        let fractional = 0;
        for (let j = 0; j <= i - a.window; j++) {
          const x = u[(b * T + j) * H + h];
          if (!(Math.abs(clip(x - g) - clip(x - c)) < 2e-5 * (1 + Math.abs(c))))
            return `gate of u[${j}] for query ${i} (b ${b}, h ${h}): τ ${g}, expected ${c}`;
          if (x - c > 0 && x - c < 1) fractional++;
        }
        if (fractional > 0 && !(Math.abs(g - c) < 2e-5 * (1 + Math.abs(c)))) return `τ[${b},${h},${i}] = ${g}, expected ${c}`;
      }
  return null;
}

/** The τ + attention forward against the CPU on the stable rows (all for 'logit'); at least `minStable` of them. */
async function forwardMismatch(gpu: WebGPUBackend, d: Data, overrides: SkForwardOverrides = {}, minStable = 1): Promise<string | null> {
  const a = d.a;
  const { B, T, H, D } = a.dims;
  const want = sparsekAttnForwardCpu(d.q, d.k, d.v, d.u, a);
  const gaps = rowGaps(d.u, want.tau, a, false, false);
  const stableRow = (r: number) => a.gate === 'logit' || gaps[r] >= GAP;
  let stable = 0;
  for (let r = 0; r < B * H * T; r++) stable += stableRow(r) ? 1 : 0;
  if (stable < minStable * B * H * T) return `only ${stable} of ${B * H * T} rows are ≥ ${GAP} from τ (data)`;
  // element e of o [B,T,H,D] → row (b, h, i) of [B,H,T]
  const rowOf = (e: number) => {
    const bth = Math.floor(e / D);
    const h = bth % H;
    const bt = Math.floor(bth / H);
    return (Math.floor(bt / T) * H + h) * T + (bt % T);
  };
  const rows = [B, T, H, D];
  const t = { q: put(gpu, d.q, rows), k: put(gpu, d.k, rows), v: put(gpu, d.v, rows), u: put(gpu, d.u, [B, T, H]) };
  const r = sparsekAttnForwardWebGPU(gpu, t, a, overrides);
  const got = { o: await read(r.o), lse: await read(r.lse), tau: await read(r.tau) };
  for (const x of [t.q, t.k, t.v, t.u, r.o, r.lse, r.tau]) x.dispose();
  const note = stable < B * H * T ? ` (on the ${stable} of ${B * H * T} rows ≥ ${GAP} from τ)` : '';
  const bad =
    mismatch(got.o, want.o, 2e-5, 2e-4, 'o', (e) => stableRow(rowOf(e))) ??
    mismatch(got.lse, want.lse, 2e-5, 2e-5, 'lse', stableRow) ??
    tauMismatch(got.tau, want.tau, d.u, a);
  return bad ? bad + note : null;
}

/** The backward kernel (given the CPU forward's o, lse and τ in float32) against the CPU backward. */
async function backwardMismatch(gpu: WebGPUBackend, d: Data, cfg?: SkBwdConfig): Promise<string | null> {
  const a = d.a;
  const { B, T, H, D } = a.dims;
  const fwd = sparsekAttnForwardCpu(d.q, d.k, d.v, d.u, a);
  const want = sparsekAttnBackwardCpu(d.q, d.k, d.v, d.u, d.dO, fwd.lse, fwd.tau, a);
  const tau32 = Float32Array.from(fwd.tau, (t) => (t === Number.NEGATIVE_INFINITY ? TAU_SENTINEL : t));
  const rows = [B, T, H, D];
  const inputs = {
    q: put(gpu, d.q, rows),
    k: put(gpu, d.k, rows),
    v: put(gpu, d.v, rows),
    u: put(gpu, d.u, [B, T, H]),
    dO: put(gpu, d.dO, rows),
    o: put(gpu, fwd.o, rows),
    lse: put(gpu, fwd.lse, [B, H, T]),
    tau: put(gpu, tau32, [B, H, T]),
  };
  const g = sparsekAttnBackwardWebGPU(gpu, inputs, a, cfg);
  const got = { dq: await read(g.dq), dk: await read(g.dk), dv: await read(g.dv), du: await read(g.du) };
  for (const x of [...Object.values(inputs), ...Object.values(g)]) x.dispose();
  for (const key of ['dq', 'dk', 'dv', 'du'] as const) {
    const bad = bwdMismatch(got[key], want[key], key);
    if (bad) return bad;
  }
  if (a.budget < T - a.window && !want.du.some((x) => Math.abs(x) > 1e-3)) return 'du is ~0 everywhere (a case that checks nothing)';
  return null;
}

/** valueAndGrad of the public fused route on the GPU (float32) against the CPU route (float64). */
async function routeMismatch(gpu: WebGPUBackend, d: Data): Promise<string | null> {
  const a = d.a;
  const { B, T, H, D } = a.dims;
  const rows = [B, T, H, D];
  const run = async (backend: WebGPUBackend | 'cpu') => {
    const mk = (x: Float64Array, shape: number[]) => (backend === 'cpu' ? tensor(x, shape, { dtype: 'float64' }) : put(backend, x, shape));
    const p = { q: mk(d.q, rows), k: mk(d.k, rows), v: mk(d.v, rows), u: mk(d.u, [B, T, H]) };
    const w = mk(d.dO, rows);
    const { value, aux, grads } = valueAndGrad((x: typeof p) => {
      const o = sparsekAttention(x.q, x.k, x.v, x.u, { k: a.budget, window: a.window, gate: a.gate, scale: a.scale });
      return { loss: sum(mul(o, w)), aux: o };
    })(p);
    const out = { o: await read(aux), dq: await read(grads.q), dk: await read(grads.k), dv: await read(grads.v), du: await read(grads.u) };
    for (const x of [...Object.values(p), w, value, aux, ...Object.values(grads)]) x.dispose();
    return out;
  };
  const want = await run('cpu');
  const got = await run(gpu);
  for (const key of ['o', 'dq', 'dk', 'dv', 'du'] as const) {
    const bad = mismatch(got[key], want[key], 5e-5, 5e-4, key);
    if (bad) return bad;
  }
  return null;
}

/** The attention cases (see the file comment); `small` for software adapters. */
async function checkAttention(gpu: WebGPUBackend, small: boolean, rec: Recorder): Promise<void> {
  const dims = (a: SkAttrs) => `B=${a.dims.B} T=${a.dims.T} H=${a.dims.H} D=${a.dims.D}`;
  const label = (a: SkAttrs) => `gate=${a.gate} window=${a.window} k=${a.budget} ${dims(a)}`;
  // forward and backward kernel: every gate × window × budget kind, on a cycle of shapes
  // (odd T, partial tiles, D not a multiple of 4, several heads and batches)
  const shapes: [number, number, number, number][] = small
    ? [
        [1, 23, 1, 4],
        [2, 40, 2, 3],
        [1, 57, 2, 8],
      ]
    : [
        [2, 150, 2, 64],
        [1, 333, 2, 64],
        [1, 257, 3, 6],
        [2, 129, 1, 128],
        [1, 200, 2, 16],
        [1, 97, 2, 64],
      ];
  const windows = small ? [0, 5] : [0, 1, 5, 64];
  let n = 0;
  for (const gate of GATES)
    for (const window of windows)
      for (const kind of ['fractional', 'integer', 'k ≥ prefix'] as const) {
        const [B, T, H, D] = shapes[n % shapes.length];
        const budget = kind === 'fractional' ? [2.5, 7.3, 30.5][n % 3] : kind === 'integer' ? [1, 4, 32][n % 3] : T + 3;
        const a = attrs(B, T, H, D, budget, window, gate);
        const seed = 100 + 13 * n++;
        await rec(`sparsek attention forward ${label(a)} (${kind})`, () => forwardMismatch(gpu, makeData(a, seed, 'none'), {}, 0.5));
        await rec(`sparsek attention backward ${label(a)} (${kind})`, () => backwardMismatch(gpu, makeData(a, seed, 'tie')));
      }
  // long sequences: the τ kernel's chunks, compactions and entering list, the backward's scan chunks
  const long = small ? attrs(1, 300, 1, 8, 12, 16, 'kv') : attrs(1, 2048, 2, 64, 64, 64, 'kv');
  for (const gate of GATES) {
    const a = { ...long, gate };
    await rec(`sparsek attention forward, long ${label(a)}`, () => forwardMismatch(gpu, makeData(a, 7, 'none'), {}, 0.2));
    await rec(`sparsek attention backward, long ${label(a)}`, () => backwardMismatch(gpu, makeData(a, 7, 'tie')));
  }
  // scores growing with the position: every entry enters, τ walks up at every step
  const growing = (n: number, s: number) => normals(n, s, 0.3).map((x, i) => x + 0.05 * Math.floor(i / 2));
  const ga = small ? attrs(1, 200, 2, 4, 12.5, 8, 'logit') : attrs(1, 2000, 2, 32, 12.5, 8, 'logit');
  await rec(`sparsek attention forward, scores growing with position ${label(ga)}`, () =>
    forwardMismatch(gpu, makeData(ga, 42, 'none', growing)),
  );
  // the active set beyond the workgroup part (default 4096 entries; the spill to the global
  // scratch): a budget above it (every entry of the first ⌊k⌋ is active at once), gate 'logit'
  // (continuous in τ: every row compared); and with the workgroup part made small
  const spill = small ? attrs(1, 200, 1, 4, 150, 3, 'logit') : attrs(1, 6144, 1, 16, 4500, 3, 'logit');
  const spillCap = small ? { tau: { cap: 64 } } : {};
  await rec(`sparsek attention forward, active set beyond the workgroup part ${label(spill)}${small ? ' cap 64' : ''}`, () =>
    forwardMismatch(gpu, makeData(spill, 11, 'none'), spillCap),
  );
  const flat = (n: number, s: number) => normals(n, s, 0.4);
  const va = small ? attrs(1, 60, 2, 4, 4, 2, 'kv') : attrs(2, 400, 2, 64, 6.5, 16, 'kv');
  const variants: [string, SkForwardOverrides, Gate, ((n: number, s: number) => Float64Array) | undefined][] = [
    ['no subgroups (both kernels)', { tau: { sg: false }, fwd: { sg: false } }, 'kv', undefined],
    ['no subgroups (both kernels)', { tau: { sg: false }, fwd: { sg: false } }, 'logit', undefined],
    ['active set spilling (cap 16), flat scores', { tau: { cap: 16 } }, 'kv', flat],
    ['active set spilling (cap 16), flat scores, no subgroups', { tau: { cap: 16, sg: false } }, 'v', flat],
    ['active set spilling (cap 16), flat scores', { tau: { cap: 16 } }, 'logit', flat],
    ['64-thread τ kernel', { tau: { nt: 64 } }, 'v', undefined],
    ['forward tiles 16×16', { fwd: { bq: 16, bk: 16, tm: 4, tn: 4 } }, 'kv', undefined],
  ];
  for (const [vname, o, gate, uOf] of variants) {
    if (small && vname.startsWith('forward tiles')) continue; // the software tile list differs
    const a = { ...va, gate };
    await rec(`sparsek attention forward [${vname}] ${label(a)}`, () => forwardMismatch(gpu, makeData(a, 20, 'none', uOf), o, 0.2));
  }
  // the backward on other block shapes than the device's first: a tiny one (many blocks, several
  // candidate tiles per scan chunk) and a middle one
  const cfgs: [string, SkBwdConfig][] = [
    ['tiny blocks', { bq: 4, bk: 4, nt: 16, tm: 1, tn: 1 }],
    ['16×16 blocks', { bq: 16, bk: 16, nt: 128, tm: 2, tn: 1 }],
  ];
  for (const [cname, cfg] of cfgs)
    for (const gate of GATES) {
      if (small && cname !== 'tiny blocks') continue;
      const a = small ? attrs(1, 29, 3, 5, 2.5, 1, gate) : attrs(1, 129, 3, 64, 5.5, 5, gate);
      await rec(`sparsek attention backward [${cname}] ${label(a)}`, () => backwardMismatch(gpu, makeData(a, 30, 'tie'), cfg));
    }
  // the public route (forward and backward kernels chained, τ and lse from the GPU) through autograd
  for (const gate of GATES) {
    const a = small ? attrs(1, 24, 2, 4, 2.5, 3, gate) : attrs(2, 100, 2, 64, 5.5, 8, gate);
    await rec(`sparsek attention fused route, o and dq dk dv du through autograd ${label(a)}`, () =>
      routeMismatch(gpu, makeData(a, 50, 'stable')),
    );
  }
}

type Recorder = (name: string, f: () => Promise<string | null>) => Promise<void>;

/** Every SPARSEK check on a fresh WebGPU device; one result per case. */
export async function checkSparsek(small = process.env.FOXGATE_CHECK_SMALL === '1'): Promise<Result[]> {
  const gpu = await initWebGPU();
  const results: Result[] = [];
  const rec: Recorder = async (name, f) => {
    const t0 = performance.now();
    try {
      const msg = await f();
      results.push({ name, ok: msg === null, msg: msg ?? undefined });
    } catch (e) {
      results.push({ name, ok: false, msg: `threw ${(e as Error).message}` });
    }
    if (process.env.FOXGATE_CHECK_VERBOSE === '1') console.log(`${results[results.length - 1].ok ? 'ok  ' : 'FAIL'} ${name} ${secs(t0)} s`);
  };
  try {
    await checkProjection(gpu, small, rec);
    await checkAttention(gpu, small, rec);
  } finally {
    await gpu.destroy();
  }
  return results;
}
