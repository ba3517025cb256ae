import { gradcheck, valueAndGrad } from '@foxgate/autograd';
import { dispose, memoryStats, type Tensor, zeros } from '@foxgate/tensor';
import { describe, expect, it } from 'vitest';
import { initRMSNorm, RMS_NORM_EPS, type RMSNormParams, rmsNormLayer } from '../src/index.js';
import { f64, maxDiff, throwsNaming, values, wsum } from './util.js';

/** x / √(mean(x²) + eps) · g per row, in plain JS. */
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
    expect(p.g.shape).toEqual([5]);
    expect(p.g.dtype).toBe('float32');
    expect([...p.g.dataSync()]).toEqual([1, 1, 1, 1, 1]);
    const q = initRMSNorm(3, { dtype: 'float64', backend: 'cpu' });
    expect(q.g.dtype).toBe('float64');
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
    const p = { g: f64(gs, [5]) };
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
    const f = (gg: Tensor, xx: Tensor) => wsum(rmsNormLayer({ g: gg }, xx, 1e-5));
    for (const gain of [p.g, g]) {
      const report = gradcheck(f, [gain, x]);
      expect(report.ok).toBe(true);
      expect(report.inputs.every((r) => r.checked)).toBe(true);
    }
    dispose([p, g, x]);
  });

  it('valueAndGrad: d/dg Σ w·y = Σ_rows w ⊙ x̂', () => {
    const xs = values(2 * 3, 5);
    const x = f64(xs, [2, 3]);
    const p = initRMSNorm(3, { dtype: 'float64', backend: 'cpu' });
    const { value, grads } = valueAndGrad((q: RMSNormParams, xx: Tensor) => wsum(rmsNormLayer(q, xx)))(p, x);
    const xhat = refRmsNorm(xs, [1, 1, 1], 1e-6);
    const W = values(6, 12345, -1, 1);
    const dg = [0, 1, 2].map((i) => W[i] * xhat[i] + W[3 + i] * xhat[3 + i]);
    expect(maxDiff(grads.g.dataSync(), dg)).toBeLessThan(1e-14);
    dispose([x, p, value, grads]);
  });
});

describe('initRMSNorm and rmsNormLayer errors name the function and the shapes', () => {
  it("x's last dim ≠ dim", () => {
    const p = initRMSNorm(4, { backend: 'cpu' });
    const x = zeros([2, 3], { backend: 'cpu' });
    expect(throwsNaming(() => rmsNormLayer(p, x))).toBe('rmsNormLayer: x [2,3] has last dim 3 but p.g [4] expects 4');
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
