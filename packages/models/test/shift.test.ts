import { gradcheck, valueAndGrad } from '@foxgate/autograd';
import { concat, dispose, memoryStats, narrow, reshape, rngKey, type Tensor, zeros } from '@foxgate/tensor';
import { describe, expect, it } from 'vitest';
import { initShiftLinear, type ShiftLinearParams, shiftLinear } from '../src/index.js';
import { f64, maxDiff, stats, throwsNaming, values, wsum } from './util.js';

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

interface Ref {
  out: number[];
  raw: number[];
}

/**
 * The token shift in plain JS for x [B,T,h], linear [h,h], shift_proj [H,h] (+ optional bias [H]):
 * k̂ = x·linearᵀ, α = sigmoid(x·shift_projᵀ + b), carry_t = k̂_{t−1} (prev or 0 at t = 0, 0 where
 * reset = 1), k_t = α_t·carry_t + (1 − α_t)·k̂_t per head.
 */
function refShift(
  xs: number[],
  [B, T, h]: number[],
  H: number,
  wl: number[],
  ws: number[],
  opts: { bs?: number[]; prev?: number[]; reset?: number[] } = {},
): Ref {
  const D = h / H;
  const raw: number[] = [];
  const alpha: number[] = [];
  for (let r = 0; r < B * T; r++) {
    for (let o = 0; o < h; o++) {
      let s = 0;
      for (let i = 0; i < h; i++) s += xs[r * h + i] * wl[o * h + i];
      raw.push(s);
    }
    for (let j = 0; j < H; j++) {
      let s = opts.bs ? opts.bs[j] : 0;
      for (let i = 0; i < h; i++) s += xs[r * h + i] * ws[j * h + i];
      alpha.push(sigmoid(s));
    }
  }
  const out: number[] = [];
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) {
      const r = b * T + t;
      const keep = opts.reset ? 1 - opts.reset[r] : 1;
      for (let o = 0; o < h; o++) {
        const carry = t > 0 ? raw[(r - 1) * h + o] : opts.prev ? opts.prev[b * h + o] : 0;
        const a = alpha[r * H + Math.floor(o / D)];
        out.push(a * carry * keep + (1 - a) * raw[r * h + o]);
      }
    }
  return { out, raw };
}

const [B, T, h, H] = [2, 5, 6, 3];
const xs = values(B * T * h, 1);
const wl = values(h * h, 2, -0.5, 0.5);
const ws = values(H * h, 3, -0.5, 0.5);
const params = (bias?: number[], w = ws): ShiftLinearParams => ({
  linear: { weight: f64(wl, [h, h]) },
  shift_proj: bias ? { weight: f64(w, [H, h]), bias: f64(bias, [H]) } : { weight: f64(w, [H, h]) },
});
const zerosW = new Array<number>(H * h).fill(0);

describe('shiftLinear: k_t = α_t·k̂_{t−1} + (1 − α_t)·k̂_t per head', () => {
  it('matches plain loops (float64); raw is k̂ = x·linearᵀ', () => {
    const p = params();
    const x = f64(xs, [B, T, h]);
    const { out, raw } = shiftLinear(p, x, H);
    const want = refShift(xs, [B, T, h], H, wl, ws);
    expect(out.shape).toEqual([B, T, h]);
    expect(raw.shape).toEqual([B, T, h]);
    expect(out.dtype).toBe('float64');
    expect(maxDiff(out.dataSync(), want.out)).toBeLessThan(1e-14);
    expect(maxDiff(raw.dataSync(), want.raw)).toBeLessThan(1e-14);
    dispose([p, x, out, raw]);
  });

  it('α = 0 gives k̂; α = 1 gives the previous row of k̂ (zeros at t = 0)', () => {
    const x = f64(xs, [B, T, h]);
    // shift_proj = 0 with a bias of ∓40: α = sigmoid(∓40), 0 or 1 to 4e-18
    const p0 = params([-40, -40, -40], zerosW);
    const r0 = shiftLinear(p0, x, H);
    expect(maxDiff(r0.out.dataSync(), r0.raw.dataSync())).toBeLessThan(1e-15);
    const p1 = params([40, 40, 40], zerosW);
    const r1 = shiftLinear(p1, x, H);
    const k = r1.raw.dataSync();
    const shifted: number[] = [];
    for (let b = 0; b < B; b++)
      for (let t = 0; t < T; t++) for (let o = 0; o < h; o++) shifted.push(t === 0 ? 0 : k[(b * T + t - 1) * h + o]);
    expect(maxDiff(r1.out.dataSync(), shifted)).toBeLessThan(1e-15);
    dispose([x, p0, p1, r0, r1]);
  });

  it('α is per head: each head mixes its own D = h/H features with its own gate', () => {
    const x = f64(xs, [B, T, h]);
    const p = params([40, -40, 0], zerosW); // head 0 shifts, head 1 stays, head 2 averages
    const { out, raw } = shiftLinear(p, x, H);
    const [o, k] = [out.dataSync(), raw.dataSync()];
    const D = h / H;
    for (let b = 0; b < B; b++)
      for (let t = 1; t < T; t++)
        for (let j = 0; j < h; j++) {
          const [cur, prev] = [k[(b * T + t) * h + j], k[(b * T + t - 1) * h + j]];
          const want = [prev, cur, (prev + cur) / 2][Math.floor(j / D)];
          expect(Math.abs(o[(b * T + t) * h + j] - want)).toBeLessThan(1e-15);
        }
    dispose([x, p, out, raw]);
  });

  it('reset = 1 at a position zeroes the carried row there (and only there)', () => {
    const x = f64(xs, [B, T, h]);
    const reset = new Array<number>(B * T).fill(0);
    reset[2] = 1; // batch 0, t = 2
    reset[T + 4] = 1; // batch 1, t = 4
    const rt = f64(reset, [B, T]);
    const p = params();
    const { out, raw } = shiftLinear(p, x, H, { reset: rt });
    expect(maxDiff(out.dataSync(), refShift(xs, [B, T, h], H, wl, ws, { reset }).out)).toBeLessThan(1e-14);
    // with α = 1 a reset row is exactly 0, the others are the previous row
    const p1 = params([40, 40, 40], zerosW);
    const r1 = shiftLinear(p1, x, H, { reset: rt });
    const [o1, k1] = [r1.out.dataSync(), r1.raw.dataSync()];
    for (let r = 0; r < B * T; r++) {
      const t = r % T;
      const row = Array.from(o1.slice(r * h, r * h + h));
      const want = t === 0 || reset[r] ? new Array<number>(h).fill(0) : Array.from(k1.slice((r - 1) * h, r * h));
      expect(maxDiff(row, want)).toBeLessThan(1e-15);
    }
    // a reset at t = 0 also drops prev
    const prev = f64(values(B * h, 8), [B, h]);
    const r0 = f64([1, 0, 0, 0, 0, 1, 0, 0, 0, 0], [B, T]);
    const a = shiftLinear(p, x, H, { reset: r0, prev });
    const b = shiftLinear(p, x, H);
    expect(maxDiff(a.out.dataSync(), b.out.dataSync())).toBeLessThan(1e-15);
    dispose([x, rt, p, out, raw, p1, r1, prev, r0, a, b]);
  });

  it('prev replaces k̂_{−1}: only row t = 0 changes, by α₀·prev', () => {
    const x = f64(xs, [B, T, h]);
    const pv = values(B * h, 9);
    const prev = f64(pv, [B, h]);
    const p = params();
    const a = shiftLinear(p, x, H, { prev });
    expect(maxDiff(a.out.dataSync(), refShift(xs, [B, T, h], H, wl, ws, { prev: pv }).out)).toBeLessThan(1e-14);
    const b = shiftLinear(p, x, H);
    const [A, Bo] = [a.out.dataSync(), b.out.dataSync()];
    for (let i = 0; i < A.length; i++) if (Math.floor(i / h) % T !== 0) expect(A[i]).toBe(Bo[i]);
    expect(maxDiff(A, Bo)).toBeGreaterThan(1e-3);
    dispose([x, prev, p, a, b]);
  });

  it('decoding one step at a time, carrying the last row of raw as prev, equals the full sequence', () => {
    const x = f64(xs, [B, T, h]);
    const p = params([0.3, -0.2, 0.1]);
    const full = shiftLinear(p, x, H);
    const steps: Tensor[] = [];
    let prev: Tensor | null = null;
    for (let t = 0; t < T; t++) {
      const xt = narrow(x, 1, t, 1);
      const { out, raw } = shiftLinear(p, xt, H, { prev });
      steps.push(out);
      prev?.dispose();
      prev = reshape(raw, [B, h]);
      dispose([xt, raw]);
    }
    const joined = concat(steps, 1);
    expect(maxDiff(joined.dataSync(), full.out.dataSync())).toBeLessThan(1e-15);
    dispose([x, p, full, steps, prev, joined]);
  });

  it('only out and raw stay alive, with and without prev and reset', () => {
    const x = f64(xs, [B, T, h]);
    const p = params([1, 2, 3]);
    const prev = f64(values(B * h, 4), [B, h]);
    const reset = f64(values(B * T, 5, 0, 1), [B, T]);
    for (const opts of [{}, { prev }, { reset }, { prev, reset }]) {
      const before = memoryStats().backends.cpu.tensors;
      const r = shiftLinear(p, x, H, opts);
      expect(memoryStats().backends.cpu.tensors).toBe(before + 2);
      dispose(r);
    }
    dispose([x, p, prev, reset]);
  });
});

describe('shiftLinear gradients', () => {
  it('passes gradcheck in linear, shift_proj (weight and bias), x and prev (float64), with a reset', () => {
    const [b, t, hh, hd] = [2, 3, 4, 2];
    const wl2 = f64(values(hh * hh, 20, -0.5, 0.5), [hh, hh]);
    const ws2 = f64(values(hd * hh, 21), [hd, hh]);
    const bs2 = f64(values(hd, 22), [hd]);
    const x = f64(values(b * t * hh, 23), [b, t, hh]);
    const prev = f64(values(b * hh, 24), [b, hh]);
    const reset = f64([0, 1, 0, 0, 0, 1], [b, t]);
    const f = (a: Tensor, c: Tensor, d: Tensor, xx: Tensor, pp: Tensor) => {
      const r = shiftLinear({ linear: { weight: a }, shift_proj: { weight: c, bias: d } }, xx, hd, { prev: pp, reset });
      // both outputs feed the loss, so the raw path is checked too
      return wsum(concat([r.out, r.raw], 1));
    };
    const report = gradcheck(f, [wl2, ws2, bs2, x, prev]);
    expect(report.ok).toBe(true);
    expect(report.inputs.map((r) => r.checked)).toEqual([true, true, true, true, true]);
    dispose([wl2, ws2, bs2, x, prev, reset]);
  });

  it('valueAndGrad over ShiftLinearParams mirrors the tree', () => {
    const p = initShiftLinear(rngKey(3), 4, 2, { dtype: 'float64', backend: 'cpu' });
    const x = f64(values(2 * 3 * 4, 25), [2, 3, 4]);
    const { value, grads } = valueAndGrad((q: ShiftLinearParams) => wsum(shiftLinear(q, x, 2).out))(p);
    expect(Object.keys(grads).sort()).toEqual(['linear', 'shift_proj']);
    expect(grads.linear.weight.shape).toEqual([4, 4]);
    expect(grads.shift_proj.weight.shape).toEqual([2, 4]);
    dispose([p, x, value, grads]);
  });
});

describe('initShiftLinear', () => {
  it('linear [h,h] and shift_proj [H,h], bias-free, N(0, 0.02²), from independent halves of the key', () => {
    const p = initShiftLinear(rngKey(4), 256, 8, { backend: 'cpu' });
    expect(p.linear.weight.shape).toEqual([256, 256]);
    expect(p.shift_proj.weight.shape).toEqual([8, 256]);
    expect(p.linear.bias).toBeUndefined();
    expect(p.shift_proj.bias).toBeUndefined();
    const n = 256 * 256;
    const { mean, std } = stats(p.linear.weight.dataSync());
    expect(Math.abs(mean)).toBeLessThan((5 * 0.02) / Math.sqrt(n));
    expect(Math.abs(std - 0.02)).toBeLessThan((5 * 0.02) / Math.sqrt(2 * n));
    const [l, s] = [p.linear.weight.dataSync(), p.shift_proj.weight.dataSync()];
    expect(s.some((v, i) => v !== l[i])).toBe(true);
    const q = initShiftLinear(rngKey(4), 256, 8, { backend: 'cpu' });
    expect([...q.shift_proj.weight.dataSync()]).toEqual([...s]);
    const w = initShiftLinear(rngKey(4), 256, 8, { std: 0.5, dtype: 'float64', backend: 'cpu' });
    expect(w.linear.weight.dtype).toBe('float64');
    expect(Math.abs(stats(w.linear.weight.dataSync()).std - 0.5)).toBeLessThan((5 * 0.5) / Math.sqrt(2 * n));
    dispose([p, q, w]);
  });
});

describe('shiftLinear errors name the function and the argument', () => {
  const p = initShiftLinear(rngKey(0), 4, 2, { backend: 'cpu' });

  it('x of the wrong rank or width, heads that do not match shift_proj', () => {
    expect(throwsNaming(() => shiftLinear(p, zeros([3, 4], { backend: 'cpu' }), 2))).toBe('shiftLinear: x must be [B,T,h], got [3,4]');
    expect(throwsNaming(() => shiftLinear(p, zeros([1, 3, 5], { backend: 'cpu' }), 2))).toBe(
      'shiftLinear: x [1,3,5] has last dim 5 but p.linear.weight [4,4] expects 4',
    );
    expect(throwsNaming(() => shiftLinear(p, zeros([1, 3, 4], { backend: 'cpu' }), 3))).toBe(
      'shiftLinear: p.shift_proj.weight [2,4] must be [3,4] with 3 dividing 4',
    );
  });

  it('reset and prev of the wrong dtype or shape, checked before anything is computed', () => {
    const x = zeros([2, 3, 4], { backend: 'cpu' });
    const bad = [
      zeros([2, 3], { dtype: 'float64', backend: 'cpu' }),
      zeros([6], { backend: 'cpu' }),
      zeros([2, 4], { backend: 'cpu' }),
      zeros([2, 5], { backend: 'cpu' }),
      zeros([8], { backend: 'cpu' }),
    ];
    const before = memoryStats().backends.cpu.tensors;
    expect(throwsNaming(() => shiftLinear(p, x, 2, { reset: bad[0] }))).toBe(
      'shiftLinear: reset must be float32[2,3] for x float32[2,3,4], got float64[2,3]',
    );
    expect(throwsNaming(() => shiftLinear(p, x, 2, { reset: bad[1] }))).toBe(
      'shiftLinear: reset must be float32[2,3] for x float32[2,3,4], got float32[6]',
    );
    expect(throwsNaming(() => shiftLinear(p, x, 2, { reset: bad[2] }))).toBe(
      'shiftLinear: reset must be float32[2,3] for x float32[2,3,4], got float32[2,4]',
    );
    expect(throwsNaming(() => shiftLinear(p, x, 2, { prev: bad[3] }))).toBe(
      'shiftLinear: prev must be float32[2,4] for x float32[2,3,4], got float32[2,5]',
    );
    expect(throwsNaming(() => shiftLinear(p, x, 2, { prev: bad[4] }))).toBe(
      'shiftLinear: prev must be float32[2,4] for x float32[2,3,4], got float32[8]',
    );
    expect(throwsNaming(() => shiftLinear(p, x, 2, { prev: bad[0] }))).toBe(
      'shiftLinear: prev must be float32[2,4] for x float32[2,3,4], got float64[2,3]',
    );
    throwsNaming(() => shiftLinear(p, x, 2, { prev: [1] as unknown as Tensor }), /^shiftLinear: prev must be a Tensor, got an array$/);
    expect(memoryStats().backends.cpu.tensors).toBe(before);
    dispose([x, bad]);
  });
});
