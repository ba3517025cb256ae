import { valueAndGrad } from '@foxgate/autograd';
import { CpuBackend, memoryStats, mul, sum, type Tensor, tensor, type WebGPUBackend, zeros } from '@foxgate/tensor';
import { destroyTestWebGPU, testWebGPU, throwsNaming } from '@foxgate/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { type SparsekGate, sparsekAttention } from '../src/sparsek/attention.js';
import { type SkAttrs, sparsekAttnForwardCpu } from '../src/sparsek/attention-cpu.js';
import { type SkForwardOverrides, sparsekAttnForwardWebGPU, sparsekTauWebGPU } from '../src/sparsek/attention-webgpu.js';
import { TAU_SENTINEL } from '../src/sparsek/attention-wgsl-threshold.js';
import { mismatch } from './util/sparsek-compare.js';
import { normals } from './util/sparsek-data.js';

/**
 * The WebGPU forward of SPARSEK attention (τ kernel + attention kernel) against the float64 CPU
 * kernel and the dense reference, on lavapipe: random shapes, all three gates, windows 0, 1, 5 and
 * T, fractional / integer / k ≥ prefix budgets; τ against the CPU PrefixSelector's; the kernel
 * variants (no subgroups, the active set spilling to the global scratch, long sequences with
 * several chunks, compactions and a wrapping candidate ring); NaN propagation; the errors.
 *
 * The output jumps when a score crosses a threshold (an entry entering the support adds exp(s)
 * to the normaliser even with a tiny gate, for 'kv' and 'v'), so the data keep every score at
 * least `GAP` away from every τ_i of the CPU kernel (re-drawn with the next seed otherwise).
 */
const gpu = await testWebGPU();
afterAll(destroyTestWebGPU);

const GAP = 2e-3;

interface Data {
  q: Float64Array;
  k: Float64Array;
  v: Float64Array;
  u: Float64Array;
  attrs: SkAttrs;
}

const f32 = (a: Float64Array) => Float64Array.from(Float32Array.from(a));

function attrsOf(B: number, T: number, H: number, D: number, budget: number, window: number, gate: SparsekGate, scale = 0.7): SkAttrs {
  return { dims: { B, T, H, D }, budget, window, gate, scale };
}

interface RowInfo {
  /** Every score at least GAP from τ_i (or no real τ_i): the output is stable under f32 rounding. */
  stable: Uint8Array;
  /** τ_i real with no fractional entry (a hard top-k: τ_i is not unique). */
  flat: Uint8Array;
}

/** Per (b, h, i) in `[B,H,T]` order, from the CPU's τ. */
function rowInfo(u: Float64Array, tau: Float64Array, a: SkAttrs): RowInfo {
  const { B, T, H } = a.dims;
  const stable = new Uint8Array(B * H * T).fill(1);
  const flat = new Uint8Array(B * H * T);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let i = a.window; i < T; i++) {
        const r = (b * H + h) * T + i;
        const t = tau[r];
        if (!Number.isFinite(t)) continue;
        let fractional = 0;
        for (let j = 0; j <= i - a.window; j++) {
          const d = u[(b * T + j) * H + h] - t;
          if (Math.abs(d) < GAP) stable[r] = 0;
          if (d > 0 && d < 1) fractional++;
        }
        if (fractional === 0) flat[r] = 1;
      }
  return { stable, flat };
}

/**
 * Random float32-representable data; `strict`: re-drawn (next seeds) until every row is stable.
 * Scores are `uOf(n, seed)` (default normals × 1.5).
 */
function data(a: SkAttrs, seed: number, uOf?: (n: number, s: number) => Float64Array, strict = true): Data {
  const { B, T, H, D } = a.dims;
  const n = B * T * H * D;
  for (let s = seed; s < seed + 50; s++) {
    const u = f32(uOf ? uOf(B * T * H, s) : normals(B * T * H, s * 7 + 3, 1.5));
    const d: Data = { q: f32(normals(n, s * 7)), k: f32(normals(n, s * 7 + 1)), v: f32(normals(n, s * 7 + 2)), u, attrs: a };
    if (!strict) return d;
    const { tau } = sparsekAttnForwardCpu(d.q, d.k, d.v, d.u, a);
    if (rowInfo(u, tau, a).stable.every((x) => x === 1)) return d;
  }
  throw new Error(`no well-separated data near seed ${seed}`);
}

function onGpu(x: Float64Array, shape: number[]): Tensor {
  return tensor(Float32Array.from(x), shape, { dtype: 'float32', backend: gpu as WebGPUBackend });
}

async function gpuForward(d: Data, overrides?: SkForwardOverrides) {
  const { B, T, H, D } = d.attrs.dims;
  const rows = [B, T, H, D];
  const t = { q: onGpu(d.q, rows), k: onGpu(d.k, rows), v: onGpu(d.v, rows), u: onGpu(d.u, [B, T, H]) };
  const r = sparsekAttnForwardWebGPU(gpu as WebGPUBackend, t, d.attrs, overrides);
  const out = { o: await r.o.data(), lse: await r.lse.data(), tau: await r.tau.data() };
  for (const x of [t.q, t.k, t.v, t.u, r.o, r.lse, r.tau]) x.dispose();
  return out;
}

/** τ of the GPU against the CPU's: the gates they give every prefix entry, and τ itself where it is unique. */
function checkTau(gpuTau: ArrayLike<number>, cpuTau: Float64Array, u: Float64Array, a: SkAttrs): number {
  const { B, T, H } = a.dims;
  const clip = (x: number) => Math.min(1, Math.max(0, x));
  let compared = 0;
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let i = 0; i < T; i++) {
        const g = gpuTau[(b * H + h) * T + i];
        const c = cpuTau[(b * H + h) * T + i];
        if (i < a.window || c === Number.NEGATIVE_INFINITY) {
          expect(g, `τ[${b},${h},${i}] sentinel`).toBe(Math.fround(TAU_SENTINEL));
          continue;
        }
        if (Number.isNaN(c)) {
          expect(g, `τ[${b},${h},${i}] NaN`).toBeNaN();
          continue;
        }
        let fractional = 0;
        for (let j = 0; j <= i - a.window; j++) {
          const x = u[(b * T + j) * H + h];
          expect(Math.abs(clip(x - g) - clip(x - c)), `gate of u[${j}] for query ${i}`).toBeLessThan(2e-5 * (1 + Math.abs(c)));
          if (x - c > 0 && x - c < 1) fractional++;
        }
        if (fractional > 0) {
          expect(Math.abs(g - c), `τ[${b},${h},${i}]`).toBeLessThan(2e-5 * (1 + Math.abs(c)));
          compared++;
        }
      }
  return compared;
}

/**
 * The WebGPU forward against the float64 CPU kernel (o, lse on the stable rows: all of them for
 * 'logit', whose output is continuous in τ; at least `minStable` of the rows), τ against the
 * CPU's; then the public function (fused WebGPU) against the dense reference on the same device,
 * on the stable rows that are not a hard top-k (there the reference's bisection ends at a
 * breakpoint, and in float32 the entry sitting on it may keep a gate of ~1e-8: the discontinuity).
 */
async function compare(d: Data, overrides?: SkForwardOverrides, withReference = true, minStable = 1): Promise<void> {
  const a = d.attrs;
  const { B, T, H, D } = a.dims;
  const want = sparsekAttnForwardCpu(d.q, d.k, d.v, d.u, a);
  const info = rowInfo(d.u, want.tau, a);
  const stableRow = (r: number) => a.gate === 'logit' || info.stable[r] === 1;
  // element e of o [B,T,H,D] → row (b, h, i) of [B,H,T]
  const rowOf = (e: number) => {
    const bth = Math.floor(e / D);
    const h = bth % H;
    const bt = Math.floor(bth / H);
    return (Math.floor(bt / T) * H + h) * T + (bt % T);
  };
  let stable = 0;
  for (let r = 0; r < B * H * T; r++) stable += stableRow(r) ? 1 : 0;
  expect(stable / (B * H * T), 'share of stable rows').toBeGreaterThanOrEqual(minStable);
  const got = await gpuForward(d, overrides);
  expect(mismatch(got.o, want.o, 2e-5, 2e-4, 'o vs CPU', (e) => stableRow(rowOf(e)))).toBeNull();
  expect(mismatch(got.lse, want.lse, 2e-5, 2e-5, 'lse vs CPU', stableRow)).toBeNull();
  checkTau(got.tau, want.tau, d.u, a);
  if (!withReference) return;
  const rows = [B, T, H, D];
  const t = [onGpu(d.q, rows), onGpu(d.k, rows), onGpu(d.v, rows), onGpu(d.u, [B, T, H])] as const;
  const opts = { k: a.budget, window: a.window, gate: a.gate, scale: a.scale };
  const fused = sparsekAttention(...t, opts);
  const ref = sparsekAttention(...t, { ...opts, impl: 'reference' });
  const keep = (e: number) => stableRow(rowOf(e)) && info.flat[rowOf(e)] === 0;
  expect(mismatch(await fused.data(), await ref.data(), 5e-5, 5e-4, 'fused vs reference', keep)).toBeNull();
  for (const x of [...t, fused, ref]) x.dispose();
}

describe.skipIf(!gpu)('SPARSEK attention forward on WebGPU', () => {
  const gates: SparsekGate[] = ['kv', 'v', 'logit'];
  // B, T, H, D per case (a varied mix; T up to 80)
  const shapes: [number, number, number, number][] = [
    [1, 23, 1, 4],
    [2, 40, 2, 3],
    [1, 80, 3, 8],
    [2, 57, 1, 16],
    [1, 9, 2, 5],
    [1, 66, 2, 4],
  ];
  let n = 0;
  for (const gate of gates)
    for (const window of [0, 1, 5])
      for (const kind of ['fractional', 'integer', 'k ≥ prefix'] as const) {
        const [B, T, H, D] = shapes[n++ % shapes.length];
        const budget = kind === 'fractional' ? 2.5 + (n % 3) * 1.3 : kind === 'integer' ? 1 + (n % 4) : T + 3;
        it(`gate=${gate} window=${window} k=${budget} (${kind}) B=${B} T=${T} H=${H} D=${D}`, async () => {
          await compare(data(attrsOf(B, T, H, D, budget, window, gate), 100 + n * 13));
        });
      }

  it('window ≥ T (no selection at all) and a one-position sequence', async () => {
    await compare(data(attrsOf(2, 12, 2, 4, 3, 12, 'kv'), 7));
    await compare(data(attrsOf(1, 12, 1, 4, 3, 50, 'v'), 8));
    await compare(data(attrsOf(1, 1, 1, 4, 0.5, 0, 'logit'), 9));
  });

  it('k < 1 with no window (each query may select itself)', async () => {
    await compare(data(attrsOf(1, 30, 2, 4, 0.6, 0, 'kv'), 10));
  });
});

describe.skipIf(!gpu)('kernel variants', () => {
  it('workgroup-memory reductions instead of subgroups (both kernels)', async () => {
    for (const gate of ['kv', 'logit'] as const)
      await compare(data(attrsOf(2, 70, 2, 4, 3.5, 3, gate), 20), { tau: { sg: false }, fwd: { sg: false } }, false);
  });

  it('an active set larger than the workgroup-memory part (spilling to the global scratch)', async () => {
    // small spread: most of the prefix is fractional, the support is large
    const flat = (n: number, s: number) => normals(n, s, 0.4);
    await compare(data(attrsOf(1, 30, 2, 4, 4, 2, 'kv'), 30, flat), { tau: { cap: 3 } }, false);
    await compare(data(attrsOf(1, 30, 1, 4, 5.5, 1, 'v'), 31, flat), { tau: { cap: 2, sg: false } }, false);
  });

  it('the hardware code path (constant D, vec4 or scalar rows, hardware tiles, 256-thread τ)', async () => {
    await compare(data(attrsOf(1, 150, 2, 16, 5.5, 20, 'kv'), 25), { software: false }, false);
    await compare(data(attrsOf(2, 45, 1, 6, 3, 4, 'logit'), 26), { software: false }, false);
  });

  it('long sequences: several chunks, compactions and a wrapping candidate ring', async () => {
    await compare(data(attrsOf(1, 700, 2, 4, 40, 16, 'logit'), 40, undefined, false), {}, false);
    await compare(data(attrsOf(1, 700, 1, 4, 40, 16, 'kv'), 41, undefined, false), {}, false, 0.3);
    // scores growing with the position: every entry enters, τ walks up at every step
    const growing = (n: number, s: number) => {
      const z = normals(n, s, 0.3);
      return z.map((x, i) => x + 0.05 * Math.floor(i / 2));
    };
    await compare(data(attrsOf(1, 400, 2, 4, 12.5, 8, 'logit'), 42, growing, false), { tau: { nt: 16 } }, false);
  });
});

describe.skipIf(!gpu)('thresholds, NaN and errors', () => {
  it('τ of the τ kernel equals the PrefixSelector τ (gates of every prefix entry)', async () => {
    for (const [budget, window] of [
      [1, 0],
      [2.25, 3],
      [7, 1],
    ] as const) {
      const a = attrsOf(2, 75, 2, 1, budget, window, 'kv');
      const d = data(a, 50 + budget);
      const u = onGpu(d.u, [2, 75, 2]);
      const th = sparsekTauWebGPU(gpu as WebGPUBackend, u, a);
      const want = sparsekAttnForwardCpu(d.q, d.k, d.v, d.u, a);
      expect(checkTau(await th.tau.data(), want.tau, d.u, a)).toBeGreaterThan(20);
      // the entering list is in position order and holds every selected position
      const nsel = await th.nsel.data();
      const selp = await th.selp.data();
      for (let bh = 0; bh < 4; bh++) {
        const list = Array.from(selp.slice(bh * th.Ls, bh * th.Ls + nsel[bh]));
        expect(list).toEqual([...list].sort((x, y) => x - y));
        const b = Math.floor(bh / 2);
        const h = bh % 2;
        for (let i = window; i < 75; i++) {
          const t = want.tau[bh * 75 + i];
          for (let j = 0; j <= i - window; j++)
            if (!(d.u[(b * 75 + j) * 2 + h] <= t)) expect(list, `position ${j} (query ${i})`).toContain(j);
        }
      }
      for (const x of [u, th.tau, th.selp, th.selu, th.nsel]) x.dispose();
    }
  });

  it('a NaN score makes τ and the outputs NaN from its first projection on, as on the CPU', async () => {
    for (const [at, budget] of [
      [20, 3],
      [1, 4],
    ] as const) {
      const a = attrsOf(1, 40, 2, 4, budget, 2, 'kv');
      const d = data(a, 60 + at);
      d.u[at * 2 + 1] = Number.NaN; // head 1 only
      const want = sparsekAttnForwardCpu(d.q, d.k, d.v, d.u, a);
      const got = await gpuForward(d);
      // head 0 untouched; head 1 NaN exactly where the CPU is
      const first = Math.max(at, Math.floor(budget)) + a.window;
      for (let i = 0; i < 40; i++) {
        expect(Number.isNaN(got.tau[1 * 40 + i]), `τ NaN at ${i}`).toBe(i >= first);
        expect(Number.isNaN(want.tau[40 + i]) && i >= a.window, `CPU τ NaN at ${i}`).toBe(i >= first);
        expect(Number.isNaN(got.o[(i * 2 + 1) * 4]), `o NaN at ${i}`).toBe(i >= first);
        expect(Number.isNaN(got.lse[40 + i])).toBe(i >= first);
      }
      expect(mismatch(got.o, want.o, 2e-5, 2e-4, 'o')).toBeNull();
    }
  });

  it('float64 on WebGPU is refused with one line; wrong dtypes of the launcher too', () => {
    const g = gpu as WebGPUBackend;
    throwsNaming(() => tensor(new Float64Array(4), [1, 1, 1, 4], { dtype: 'float64', backend: g }), 'float64');
    const x = zeros([1, 4, 1, 4], { backend: g });
    const u = zeros([1, 4, 1], { backend: g });
    const cpuU = zeros([1, 4, 1], { dtype: 'float64' });
    throwsNaming(
      () => sparsekAttnForwardWebGPU(g, { q: x, k: x, v: x, u: cpuU }, attrsOf(1, 4, 1, 4, 1, 1, 'kv')),
      /^sparsekAttention: u lives on the cpu backend/,
    );
    throwsNaming(() => sparsekAttention(x, x, x, cpuU, { k: 1, window: 1 }), 'u has dtype float64', 'float32');
    for (const t of [x, u, cpuU]) t.dispose();
  });

  it('the scaffold still errors for a backend without a fused kernel', () => {
    const cpu = new CpuBackend();
    const target = cpu as unknown as Record<string | symbol, unknown>;
    const plain = new Proxy(cpu, {
      getPrototypeOf: () => Object.prototype,
      get: (t, key) =>
        key === 'name' ? 'plain' : typeof target[key] === 'function' ? (target[key] as () => unknown).bind(t) : Reflect.get(t, key),
    });
    const t = (shape: number[]) => zeros(shape, { backend: plain as never });
    const [q, k, v, u] = [t([1, 6, 1, 4]), t([1, 6, 1, 4]), t([1, 6, 1, 4]), t([1, 6, 1])];
    throwsNaming(
      () => sparsekAttention(q, k, v, u, { k: 2, window: 1 }),
      /^sparsekAttention: the plain backend has no fused kernel \(fused kernels: cpu, webgpu\)/,
    );
    const r = sparsekAttention(q, k, v, u, { k: 2, window: 1, impl: 'reference' });
    expect(r.shape).toEqual([1, 6, 1, 4]);
    for (const x of [q, k, v, u, r]) x.dispose();
  });
});

describe.skipIf(!gpu)('gradients through autograd', () => {
  it('valueAndGrad of the fused WebGPU route equals the CPU route (q, k, v, u), every gate', async () => {
    for (const gate of ['kv', 'v', 'logit'] as const) {
      const a = attrsOf(1, 24, 2, 4, 2.5, 3, gate);
      const d = data(a, 70 + gate.length);
      const w = f32(normals(24 * 2 * 4, 99));
      const grads = async (backend: 'cpu' | WebGPUBackend) => {
        const mk = (x: Float64Array, shape: number[]) => (backend === 'cpu' ? tensor(x, shape, { dtype: 'float64' }) : onGpu(x, shape));
        const rows = [1, 24, 2, 4];
        const p = { q: mk(d.q, rows), k: mk(d.k, rows), v: mk(d.v, rows), u: mk(d.u, [1, 24, 2]) };
        const wt = mk(w, rows);
        const { value, grads: g } = valueAndGrad((x: typeof p) =>
          sum(mul(sparsekAttention(x.q, x.k, x.v, x.u, { k: a.budget, window: a.window, gate, scale: a.scale }), wt)),
        )(p);
        const out = {
          loss: (await value.data())[0],
          dq: await g.q.data(),
          dk: await g.k.data(),
          dv: await g.v.data(),
          du: await g.u.data(),
        };
        for (const x of [...Object.values(p), wt, value, ...Object.values(g)]) x.dispose();
        return out;
      };
      const want = await grads('cpu');
      const live = () => memoryStats().backends.webgpu?.tensors ?? 0;
      const before = live();
      const got = await grads(gpu as WebGPUBackend);
      expect(live(), 'WebGPU tensors left behind').toBe(before);
      expect(Math.abs(got.loss - want.loss)).toBeLessThan(1e-4 * (1 + Math.abs(want.loss)));
      for (const key of ['dq', 'dk', 'dv', 'du'] as const) expect(mismatch(got[key], want[key], 5e-5, 5e-4, `${gate} ${key}`)).toBeNull();
      expect(want.du.some((x) => Math.abs(x) > 1e-4)).toBe(true);
    }
  });
});
