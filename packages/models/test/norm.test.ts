import { gradcheck, valueAndGrad } from '@foxgate/autograd';
import { dispose, memoryStats, type Tensor, zeros } from '@foxgate/tensor';
import { describe, expect, it } from 'vitest';
import { headRmsNorm, initRMSNorm, RMS_NORM_EPS, type RMSNormParams, rmsNormLayer } from '../src/index.js';
import { f64, maxDiff, throwsNaming, values, wsum } from './util.js';

/** x / √(mean(x²) + eps) · weight per row, in plain JS. */
function refRmsNorm(x: number[], g: number[], eps: number): number[] {
  const d = g.length;
  const out: number[] = [];
  for (let r = 0; r < x.length / d; r++) {
    let ss = 0;
    for (let i = 0; i < d; i++) ss += x[r * d + i] ** 2;
    const inv = 1 / Math.sqrt(ss / d + eps);
    for (let i = 0; i < d; i++) out.push(x[r * d + i] * inv * g[i]);
  }
  return out;
}

describe('initRMSNorm', () => {
  it('a gain of ones [dim]', () => {
    const p = initRMSNorm(5, { backend: 'cpu' });
    expect(p.weight.shape).toEqual([5]);
    expect(p.weight.dtype).toBe('float32');
    expect([...p.weight.dataSync()]).toEqual([1, 1, 1, 1, 1]);
    const q = initRMSNorm(3, { dtype: 'float64', backend: 'cpu' });
    expect(q.weight.dtype).toBe('float64');
    dispose([p, q]);
  });
});

describe('rmsNormLayer', () => {
  it('by hand: [3,4] with unit gain → [3,4]/√12.5', () => {
    const p = initRMSNorm(2, { dtype: 'float64', backend: 'cpu' });
    const x = f64([3, 4], [2]);
    const y = rmsNormLayer(p, x, 0);
    expect(maxDiff(y.dataSync(), [3 / Math.sqrt(12.5), 4 / Math.sqrt(12.5)])).toBeLessThan(1e-15);
    dispose([p, x, y]);
  });

  it('matches plain loops with a learned gain, default eps 1e-6 and a given eps', () => {
    expect(RMS_NORM_EPS).toBe(1e-6);
    const xs = values(2 * 3 * 5, 1, -0.01, 0.01); // small values so eps matters
    const gs = values(5, 2);
    const p = { weight: f64(gs, [5]) };
    const x = f64(xs, [2, 3, 5]);
    const y = rmsNormLayer(p, x);
    expect(y.shape).toEqual([2, 3, 5]);
    expect(maxDiff(y.dataSync(), refRmsNorm(xs, gs, 1e-6))).toBeLessThan(1e-13);
    const y2 = rmsNormLayer(p, x, 1e-3);
    expect(maxDiff(y2.dataSync(), refRmsNorm(xs, gs, 1e-3))).toBeLessThan(1e-13);
    expect(maxDiff(y2.dataSync(), refRmsNorm(xs, gs, 1e-6))).toBeGreaterThan(1e-3);
    dispose([p, x, y, y2]);
  });

  it('frees its intermediates: only the output stays alive', () => {
    const p = initRMSNorm(4, { dtype: 'float64', backend: 'cpu' });
    const x = f64(values(8, 6), [2, 4]);
    const before = memoryStats().backends.cpu.tensors;
    const y = rmsNormLayer(p, x);
    expect(memoryStats().backends.cpu.tensors).toBe(before + 1);
    dispose([p, x, y]);
  });

  it('passes gradcheck in the gain and x (float64), at init and with a random gain', () => {
    const x = f64(values(3 * 4, 3), [3, 4]);
    const p = initRMSNorm(4, { dtype: 'float64', backend: 'cpu' });
    const g = f64(values(4, 4), [4]);
    const f = (gg: Tensor, xx: Tensor) => wsum(rmsNormLayer({ weight: gg }, xx, 1e-5));
    for (const gain of [p.weight, g]) {
      const report = gradcheck(f, [gain, x]);
      expect(report.ok).toBe(true);
      expect(report.inputs.every((r) => r.checked)).toBe(true);
    }
    dispose([p, g, x]);
  });

  it('valueAndGrad: d/dweight Σ w·y = Σ_rows w ⊙ x̂', () => {
    const xs = values(2 * 3, 5);
    const x = f64(xs, [2, 3]);
    const p = initRMSNorm(3, { dtype: 'float64', backend: 'cpu' });
    const { value, grads } = valueAndGrad((q: RMSNormParams, xx: Tensor) => wsum(rmsNormLayer(q, xx)))(p, x);
    const xhat = refRmsNorm(xs, [1, 1, 1], 1e-6);
    const W = values(6, 12345, -1, 1);
    const dg = [0, 1, 2].map((i) => W[i] * xhat[i] + W[3 + i] * xhat[3 + i]);
    expect(maxDiff(grads.weight.dataSync(), dg)).toBeLessThan(1e-14);
    dispose([x, p, value, grads]);
  });
});

/** Per-head RMSNorm of x [rows, H, D] in plain JS: gain(h, i) picks the weight of head h, feature i. */
function refHeadRmsNorm(x: number[], H: number, D: number, gain: (h: number, i: number) => number, eps: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < x.length / (H * D); r++)
    for (let h = 0; h < H; h++) {
      const o = (r * H + h) * D;
      let ss = 0;
      for (let i = 0; i < D; i++) ss += x[o + i] ** 2;
      const inv = 1 / Math.sqrt(ss / D + eps);
      for (let i = 0; i < D; i++) out.push(x[o + i] * inv * gain(h, i));
    }
  return out;
}

describe('headRmsNorm: each head normalised on its own', () => {
  const [B, T, H, D] = [2, 3, 4, 5];
  const xs = values(B * T * H * D, 21);

  it('per-head weight [H·D] matches plain loops (float64)', () => {
    const ws = values(H * D, 22);
    const p = { weight: f64(ws, [H * D]) };
    const x = f64(xs, [B, T, H, D]);
    const y = headRmsNorm(p, x, 1e-6);
    expect(y.shape).toEqual([B, T, H, D]);
    expect(y.dtype).toBe('float64');
    expect(
      maxDiff(
        y.dataSync(),
        refHeadRmsNorm(xs, H, D, (h, i) => ws[h * D + i], 1e-6),
      ),
    ).toBeLessThan(1e-13);
    dispose([p, x, y]);
  });

  it('shared weight [D] matches plain loops and equals the per-head weight tiled H times', () => {
    const ws = values(D, 23);
    const shared = { weight: f64(ws, [D]) };
    const tiled = {
      weight: f64(
        Array.from({ length: H * D }, (_, j) => ws[j % D]),
        [H * D],
      ),
    };
    const x = f64(xs, [B, T, H, D]);
    const y = headRmsNorm(shared, x, 1e-5);
    expect(
      maxDiff(
        y.dataSync(),
        refHeadRmsNorm(xs, H, D, (_h, i) => ws[i], 1e-5),
      ),
    ).toBeLessThan(1e-13);
    const yt = headRmsNorm(tiled, x, 1e-5);
    expect(maxDiff(y.dataSync(), yt.dataSync())).toBeLessThan(1e-15);
    dispose([shared, tiled, x, y, yt]);
  });

  it('normalises per head, not over the whole H·D row; eps takes effect', () => {
    // head 0 is 100× head 1: a whole-row norm would leave head 1 tiny, a per-head norm does not
    const row = [300, 400, 3, 4];
    const x = f64(row, [1, 1, 2, 2]);
    const p = initRMSNorm(2, { dtype: 'float64', backend: 'cpu' });
    const y = headRmsNorm(p, x, 0);
    const r0 = Math.sqrt(12.5e4);
    const r1 = Math.sqrt(12.5);
    expect(maxDiff(y.dataSync(), [300 / r0, 400 / r0, 3 / r1, 4 / r1])).toBeLessThan(1e-15);
    const y2 = headRmsNorm(p, x, 12.5); // eps = mean(x²) of head 1: √(12.5 + 12.5) = 5
    expect(maxDiff(y2.dataSync().slice(2), [3 / 5, 4 / 5])).toBeLessThan(1e-15);
    dispose([x, p, y, y2]);
  });

  it('with H = 1 it is rmsNormLayer over D', () => {
    const x = f64(xs.slice(0, 6 * D), [2, 3, 1, D]);
    const x3 = f64(xs.slice(0, 6 * D), [2, 3, D]);
    const p = { weight: f64(values(D, 24), [D]) };
    const a = headRmsNorm(p, x, 1e-6);
    const b = rmsNormLayer(p, x3, 1e-6);
    expect(maxDiff(a.dataSync(), b.dataSync())).toBeLessThan(1e-15);
    dispose([x, x3, p, a, b]);
  });

  it('frees its intermediates: only the output stays alive (both weight layouts)', () => {
    const x = f64(xs, [B, T, H, D]);
    for (const n of [H * D, D]) {
      const p = { weight: f64(values(n, 25), [n]) };
      const before = memoryStats().backends.cpu.tensors;
      const y = headRmsNorm(p, x, 1e-6);
      expect(memoryStats().backends.cpu.tensors).toBe(before + 1);
      dispose([p, y]);
    }
    x.dispose();
  });

  it('passes gradcheck in the weight and x (float64), per-head and shared', () => {
    const x = f64(values(2 * 2 * 3 * 4, 26), [2, 2, 3, 4]);
    for (const n of [12, 4]) {
      const w = f64(values(n, 27 + n), [n]);
      const report = gradcheck((ww, xx) => wsum(headRmsNorm({ weight: ww }, xx, 1e-5)), [w, x]);
      expect(report.ok).toBe(true);
      expect(report.inputs.every((r) => r.checked)).toBe(true);
      w.dispose();
    }
    x.dispose();
  });
});

describe('initRMSNorm and rmsNormLayer errors name the function and the shapes', () => {
  it("x's last dim ≠ dim", () => {
    const p = initRMSNorm(4, { backend: 'cpu' });
    const x = zeros([2, 3], { backend: 'cpu' });
    expect(throwsNaming(() => rmsNormLayer(p, x))).toBe('rmsNormLayer: x [2,3] has last dim 3 but p.weight [4] expects 4');
    throwsNaming(
      () => rmsNormLayer(p, zeros([2, 4], { dtype: 'float64', backend: 'cpu' })),
      /^rmsNormLayer: dtypes differ/,
      'float64[2,4]',
      'float32[4]',
    );
    throwsNaming(() => rmsNormLayer(p, zeros([2, 4], { backend: 'cpu' }), -1), /^rmsNormLayer: eps must be/, '-1');
    dispose([p, x]);
  });

  it('dims that are not positive integers', () => {
    expect(throwsNaming(() => initRMSNorm(0))).toBe('initRMSNorm: dim must be a positive integer, got 0');
    throwsNaming(() => initRMSNorm(-3), /^initRMSNorm: dim .* got -3$/);
  });
});

describe('headRmsNorm errors name the function and the shapes', () => {
  it('a weight that is neither [H·D] nor [D], a rank-1 x, a bad eps', () => {
    const x = zeros([2, 3, 4, 5], { backend: 'cpu' });
    const bad = { weight: zeros([7], { backend: 'cpu' }) };
    expect(throwsNaming(() => headRmsNorm(bad, x, 1e-6))).toBe(
      'headRmsNorm: p.weight [7] must be [20] (per head) or [5] (shared) for x [2,3,4,5]',
    );
    const p = { weight: zeros([5], { backend: 'cpu' }) };
    expect(throwsNaming(() => headRmsNorm(p, zeros([5], { backend: 'cpu' }), 1e-6))).toBe('headRmsNorm: x must be [..., H, D], got [5]');
    throwsNaming(() => headRmsNorm(p, x, Number.NaN), /^headRmsNorm: eps must be a finite number >= 0, got NaN$/);
    throwsNaming(
      () => headRmsNorm({ weight: zeros([4, 5], { backend: 'cpu' }) }, x, 1e-6),
      /^headRmsNorm: p.weight must be \[dim\], got \[4,5\]$/,
    );
    throwsNaming(
      () => headRmsNorm(p, zeros([2, 3, 4, 5], { dtype: 'float64', backend: 'cpu' }), 1e-6),
      /^headRmsNorm: dtypes differ/,
      'float64[2,3,4,5]',
      'float32[5]',
    );
    dispose([x, bad, p]);
  });
});
