import { gradcheck, valueAndGrad } from '@foxgate/autograd';
import { dispose, memoryStats, rngKey, scalar, split, type Tensor, tensor, transpose, zeros } from '@foxgate/tensor';
import { describe, expect, it } from 'vitest';
import { initLinear, type LinearParams, linear } from '../src/index.js';
import { f64, maxDiff, stats, throwsNaming, values, wsum } from './util.js';

const cpuTensors = () => memoryStats().backends.cpu?.tensors ?? 0;

describe('linear: y = x·weightᵀ + bias (weight [out,in])', () => {
  it('matches plain loops for x [2,2,3], weight [4,3], bias [4] (float64)', () => {
    const [B, T, I, O] = [2, 2, 3, 4];
    const xs = values(B * T * I, 1);
    const ws = values(O * I, 2); // row-major [O, I]
    const bs = values(O, 3);
    const expected: number[] = [];
    for (let r = 0; r < B * T; r++)
      for (let o = 0; o < O; o++) {
        let s = bs[o];
        for (let i = 0; i < I; i++) s += xs[r * I + i] * ws[o * I + i];
        expected.push(s);
      }
    const p = { weight: f64(ws, [O, I]), bias: f64(bs, [O]) };
    const x = f64(xs, [B, T, I]);
    const y = linear(p, x);
    expect(y.shape).toEqual([B, T, O]);
    expect(y.dtype).toBe('float64');
    expect(maxDiff(y.dataSync(), expected)).toBeLessThan(1e-14);
    dispose([p, x, y]);
  });

  it('a tiny case by hand: [1,2]·[[1,2],[3,4]]ᵀ + [10,20] = [15,31]', () => {
    // row o of weight is the o-th output's coefficients: 1·1+2·2 = 5, 1·3+2·4 = 11
    const p = { weight: f64([1, 2, 3, 4], [2, 2]), bias: f64([10, 20], [2]) };
    const x = f64([1, 2], [1, 2]);
    const y = linear(p, x);
    expect(y.toArraySync()).toEqual([[15, 31]]);
    dispose([p, x, y]);
  });

  it('without bias, on a 1-D x and on a non-contiguous (transposed) x', () => {
    const ws = values(6, 4); // weight [2,3]
    const p = { weight: f64(ws, [2, 3]) };
    const x1 = f64([1, -2, 0.5], [3]);
    const y1 = linear(p, x1);
    expect(y1.shape).toEqual([2]);
    const e1 = [0, 1].map((o) => 1 * ws[o * 3] - 2 * ws[o * 3 + 1] + 0.5 * ws[o * 3 + 2]);
    expect(maxDiff(y1.dataSync(), e1)).toBeLessThan(1e-14);

    // xt is [3,4] stored transposed: row r of the view is column r of the [4,3] base
    const base = values(12, 5);
    const xb = f64(base, [4, 3]);
    const xt = transpose(xb);
    const w2 = values(8, 6); // weight [2,4]
    const y2 = linear({ weight: f64(w2, [2, 4]) }, xt);
    const e2: number[] = [];
    for (let r = 0; r < 3; r++)
      for (let o = 0; o < 2; o++) {
        let s = 0;
        for (let i = 0; i < 4; i++) s += base[i * 3 + r] * w2[o * 4 + i];
        e2.push(s);
      }
    expect(y2.shape).toEqual([3, 2]);
    expect(maxDiff(y2.dataSync(), e2)).toBeLessThan(1e-14);
    dispose([p, x1, y1, xb, xt, y2]);
  });

  it('frees its intermediates: only the output stays alive', () => {
    const p = initLinear(rngKey(1), 8, 5, { bias: true, dtype: 'float64', backend: 'cpu' });
    const x = f64(values(24, 7), [3, 8]);
    const before = cpuTensors();
    const y = linear(p, x);
    expect(cpuTensors()).toBe(before + 1);
    y.dispose();
    expect(cpuTensors()).toBe(before);
    const q = { weight: p.weight }; // the bias-free path too
    const y2 = linear(q, x);
    expect(cpuTensors()).toBe(before + 1);
    dispose([p, x, y2]);
  });
});

describe('initLinear', () => {
  it('weight [out,in] ~ N(0, 0.02²) by default, for a 256×256 init (mean and std within sampling error)', () => {
    const n = 256 * 256;
    const { weight, bias } = initLinear(rngKey(42), 256, 256, { backend: 'cpu' });
    expect(bias).toBeUndefined();
    expect(weight.shape).toEqual([256, 256]);
    expect(weight.dtype).toBe('float32');
    const { mean, std } = stats(weight.dataSync());
    const sigma = 0.02;
    // standard errors: σ/√n for the mean, ≈ σ/√(2n) for the standard deviation; allow 5 of them
    expect(Math.abs(mean)).toBeLessThan((5 * sigma) / Math.sqrt(n));
    expect(Math.abs(std - sigma)).toBeLessThan((5 * sigma) / Math.sqrt(2 * n));
    weight.dispose();
  });

  it('honours std and dtype; the bias is zeros [out]', () => {
    const n = 256 * 256;
    const p = initLinear(rngKey(7), 256, 256, { std: 0.5, bias: true, dtype: 'float64', backend: 'cpu' });
    expect(p.weight.dtype).toBe('float64');
    const { mean, std } = stats(p.weight.dataSync());
    expect(Math.abs(mean)).toBeLessThan((5 * 0.5) / Math.sqrt(n));
    expect(Math.abs(std - 0.5)).toBeLessThan((5 * 0.5) / Math.sqrt(2 * n));
    expect(p.bias?.shape).toEqual([256]);
    expect(p.bias?.dtype).toBe('float64');
    expect([...(p.bias as Tensor).dataSync()].every((v) => v === 0)).toBe(true);
    dispose(p);
  });

  it('the default std is 0.02 whatever the fan-in; the weight is [out,in]', () => {
    const { weight } = initLinear(rngKey(3), 64, 1024, { backend: 'cpu' });
    expect(weight.shape).toEqual([1024, 64]);
    const { std } = stats(weight.dataSync());
    expect(Math.abs(std - 0.02)).toBeLessThan((5 * 0.02) / Math.sqrt(2 * 64 * 1024));
    const z = initLinear(rngKey(3), 4, 4, { std: 0, backend: 'cpu' });
    expect([...z.weight.dataSync()].every((v) => v === 0)).toBe(true);
    dispose([weight, z]);
  });

  it('same key ⇒ identical tensors; different keys ⇒ different tensors', () => {
    const a = initLinear(rngKey(123), 16, 8, { backend: 'cpu' });
    const b = initLinear(rngKey(123), 16, 8, { backend: 'cpu' });
    const [k1, k2] = split(rngKey(123), 2);
    const c = initLinear(k1, 16, 8, { backend: 'cpu' });
    const d = initLinear(k2, 16, 8, { backend: 'cpu' });
    const e = initLinear([123, 0], 16, 8, { backend: 'cpu' }); // the same key as its two words
    expect([...a.weight.dataSync()]).toEqual([...b.weight.dataSync()]);
    expect([...a.weight.dataSync()]).toEqual([...e.weight.dataSync()]);
    const differ = (x: Tensor, y: Tensor) => {
      const xa = x.dataSync();
      const ya = y.dataSync();
      let same = 0;
      for (let i = 0; i < xa.length; i++) if (xa[i] === ya[i]) same++;
      return same === 0;
    };
    expect(differ(a.weight, c.weight)).toBe(true);
    expect(differ(c.weight, d.weight)).toBe(true);
    dispose([a, b, c, d, e]);
  });
});

describe('linear gradients', () => {
  it('passes gradcheck in weight, bias and x (float64)', () => {
    const w = f64(values(3 * 4, 4), [3, 4]);
    const b = f64(values(3, 9), [3]); // a non-zero bias
    const x = f64(values(2 * 5 * 4, 8), [2, 5, 4]);
    const report = gradcheck((ww, bb, xx) => wsum(linear({ weight: ww, bias: bb }, xx)), [w, b, x]);
    expect(report.ok).toBe(true);
    expect(report.inputs.map((r) => r.checked)).toEqual([true, true, true]);
    dispose([w, b, x]);
  });

  it('valueAndGrad over the parameter tree returns a tree of the same shape and the hand gradients', () => {
    const p = initLinear(rngKey(6), 4, 3, { bias: true, dtype: 'float64', backend: 'cpu' });
    const xs = values(8, 10);
    const x = f64(xs, [2, 4]);
    const { value, grads } = valueAndGrad((q: LinearParams, xx: Tensor) => wsum(linear(q, xx)))(p, x);
    expect(Object.keys(grads).sort()).toEqual(['bias', 'weight']);
    expect(grads.weight.shape).toEqual([3, 4]);
    expect(grads.bias?.shape).toEqual([3]);
    // with G = ∂/∂y Σ y·W = W (the fixed weights of wsum, [2,3]): d bias = Σ_rows G, d weight = Gᵀ·x
    const W = values(6, 12345, -1, 1);
    const db = [0, 1, 2].map((o) => W[o] + W[3 + o]);
    expect(maxDiff((grads.bias as Tensor).dataSync(), db)).toBeLessThan(1e-14);
    const dw: number[] = [];
    for (let o = 0; o < 3; o++) for (let i = 0; i < 4; i++) dw.push(W[o] * xs[i] + W[3 + o] * xs[4 + i]);
    expect(maxDiff(grads.weight.dataSync(), dw)).toBeLessThan(1e-14);
    dispose([p, x, value, grads]);
  });
});

describe('linear and initLinear errors name the function and the shapes', () => {
  const p = { weight: zeros([8, 4], { backend: 'cpu' }) };

  it("x's last dim ≠ in", () => {
    const msg = throwsNaming(() => linear(p, zeros([2, 3, 5], { backend: 'cpu' })));
    expect(msg).toBe('linear: x [2,3,5] has last dim 5 but p.weight [8,4] expects 4');
    throwsNaming(() => linear(p, scalar(1, { backend: 'cpu' })), /^linear: /, 'scalar', '[...,4]');
  });

  it('dims that are not positive integers', () => {
    const k = rngKey(0);
    expect(throwsNaming(() => initLinear(k, 0, 4))).toBe('initLinear: inDim must be a positive integer, got 0');
    throwsNaming(() => initLinear(k, 2.5, 4), /^initLinear: inDim/, '2.5');
    throwsNaming(() => initLinear(k, 4, -1), /^initLinear: outDim/, '-1');
    throwsNaming(() => initLinear(k, 4, Number.NaN), /^initLinear: outDim/, 'NaN');
    throwsNaming(() => initLinear(k, '4' as unknown as number, 4), /^initLinear: inDim/);
    expect(throwsNaming(() => initLinear(k, 4, 4, { std: -1 }))).toBe('initLinear: std must be a finite number >= 0, got -1');
    throwsNaming(() => initLinear(k, 4, 4, { dtype: 'int32' }), /^initLinear: dtype/, 'int32');
  });

  it('bad parameters: weight not 2-D, bias of the wrong length, dtypes differ, not a tensor', () => {
    const x = zeros([2, 4], { backend: 'cpu' });
    throwsNaming(() => linear({ weight: zeros([4], { backend: 'cpu' }) }, x), /^linear: p.weight must be \[out,in\], got \[4\]$/);
    expect(throwsNaming(() => linear({ weight: p.weight, bias: zeros([4], { backend: 'cpu' }) }, x))).toBe(
      'linear: p.bias must be [8] for p.weight [8,4], got [4]',
    );
    throwsNaming(
      () => linear(p, zeros([2, 4], { dtype: 'float64', backend: 'cpu' })),
      /^linear: dtypes differ/,
      'float64[2,4]',
      'float32[8,4]',
    );
    throwsNaming(
      () => linear({ weight: p.weight, bias: zeros([8], { dtype: 'float64', backend: 'cpu' }) }, x),
      /^linear: dtypes differ: p.weight float32\[8,4\] and p.bias float64\[8\]$/,
    );
    throwsNaming(() => linear(p, [1, 2, 3, 4] as unknown as Tensor), /^linear: x must be a Tensor, got an array$/);
    throwsNaming(() => linear({} as LinearParams, x), /^linear: p.weight must be a Tensor, got undefined$/);
    throwsNaming(() => linear(null as unknown as LinearParams, x), /^linear: p must be \{weight, bias\?\}, got null$/);
    throwsNaming(
      () => linear({ weight: tensor([[1, 2]], undefined, { dtype: 'int32', backend: 'cpu' }) }, x),
      /^linear: p.weight must be float32 or float64, got int32$/,
    );
    x.dispose();
  });
});
