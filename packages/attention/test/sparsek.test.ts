import { gradcheck, valueAndGrad } from '@foxgate/autograd';
import { mul, sum, type Tensor, tensor } from '@foxgate/tensor';
import { throwsNaming } from '@foxgate/testing';
import { describe, expect, it } from 'vitest';
import { sparsek } from '../src/sparsek/op.js';
import { normals } from './util/sparsek-data.js';

/**
 * SPARSEK on the CPU: hand-computed values, the optimality conditions on random rows (which
 * characterise the unique solution), the degenerate and k ≥ m cases, per-row budgets, fused vs
 * reference, finite differences in float64, and the error messages.
 */

const impls = ['fused', 'reference'] as const;

function f64(a: ArrayLike<number>, shape: number[]): Tensor {
  return tensor(Float64Array.from(a), shape, { dtype: 'float64' });
}

function grad(z: Tensor, k: number | number[], g: Tensor, impl: 'fused' | 'reference'): { p: Float64Array; dz: Float64Array } {
  const { aux, grads } = valueAndGrad((x: Tensor) => {
    const p = sparsek(x, k, { impl });
    return { loss: sum(mul(p, g)), aux: p };
  })(z);
  return { p: Float64Array.from(aux.dataSync()), dz: Float64Array.from(grads.dataSync()) };
}

/**
 * Checks the KKT conditions of the projection row by row: Σp = k, 0 ≤ p ≤ 1, and one τ with
 * p_i = z_i − τ on the fractional entries, z_i ≤ τ where p_i = 0, z_i ≥ τ + 1 where p_i = 1.
 * Returns the row's τ (NaN when no entry is fractional).
 */
function checkKkt(z: ArrayLike<number>, p: ArrayLike<number>, m: number, k: number, tol: number): number {
  const kk = Math.min(k, m);
  let s = 0;
  let tau = Number.NaN;
  let nnz = 0;
  for (let i = 0; i < m; i++) {
    expect(p[i]).toBeGreaterThanOrEqual(0);
    expect(p[i]).toBeLessThanOrEqual(1);
    s += p[i];
    if (p[i] > 0) nnz++;
    if (p[i] > 0 && p[i] < 1) {
      if (Number.isNaN(tau)) tau = z[i] - p[i];
      expect(Math.abs(z[i] - p[i] - tau)).toBeLessThanOrEqual(tol * (1 + Math.abs(tau)));
    }
  }
  expect(Math.abs(s - kk)).toBeLessThanOrEqual(tol * m);
  expect(nnz).toBeGreaterThanOrEqual(Math.ceil(kk - tol));
  if (!Number.isNaN(tau) && k < m) {
    for (let i = 0; i < m; i++) {
      if (p[i] === 0) expect(z[i]).toBeLessThanOrEqual(tau + tol);
      if (p[i] === 1) expect(z[i]).toBeGreaterThanOrEqual(tau + 1 - tol);
    }
  }
  return tau;
}

describe('sparsek values', () => {
  for (const impl of impls) {
    it(`hand-computed row and its VJP (${impl})`, () => {
      // sorted 3, .5, .2, −1; τ = −0.15: (.5+.15) + (.2+.15) + 1 = 2
      const z = f64([0.5, 0.2, -1, 3], [1, 4]);
      const g = f64([1, 2, 3, 4], [1, 4]);
      const { p, dz } = grad(z, 2, g, impl);
      expect(Array.from(p).map((x) => +x.toFixed(12))).toEqual([0.65, 0.35, 0, 1]);
      // S = {0, 1}: dz = g − mean(1, 2) on S, 0 elsewhere
      expect(Array.from(dz).map((x) => +x.toFixed(12))).toEqual([-0.5, 0.5, 0, 0]);
    });

    it(`ties: m equal values give k/m each, gradient g − mean(g) (${impl})`, () => {
      const z = f64(new Array(7).fill(0.3), [7]);
      const g = f64([1, 2, 3, 4, 5, 6, 7], [7]);
      const { p, dz } = grad(z, 3, g, impl);
      for (const x of p) expect(x).toBeCloseTo(3 / 7, 14);
      expect(Array.from(dz).map((x) => +x.toFixed(12))).toEqual([-3, -2, -1, 0, 1, 2, 3]);
    });

    it(`degenerate gap ≥ 1: hard top-k, zero gradient (${impl})`, () => {
      const z = f64([5, 0, 4, 1.5, -2, 2.9], [6]); // top-2 = {5, 4}; third 2.9: gap 1.1
      const g = f64([1, -2, 3, 0.5, 7, 2], [6]);
      const { p, dz } = grad(z, 2, g, impl);
      if (impl === 'fused') {
        expect(Array.from(p)).toEqual([1, 0, 1, 0, 0, 0]);
        expect(Array.from(dz)).toEqual([0, 0, 0, 0, 0, 0]);
      } else {
        // the reference's bracket ends at the top of the flat piece (τ = 4 − 1): the unselected
        // entries are exactly 0 (an entry left at ~1e-8 would still enter 'kv'/'v' attention)
        const want = [1, 0, 1, 0, 0, 0];
        for (let i = 0; i < 6; i++) expect(Math.abs(p[i] - want[i])).toBeLessThan(1e-14);
        expect([p[1], p[3], p[4], p[5]]).toEqual([0, 0, 0, 0]);
        for (const x of dz) expect(Math.abs(x)).toBeLessThan(1e-14);
        const p32 = sparsek(tensor(new Float32Array([5, 0, 4, 1.5, -2, 2.9]), [6]), 2, { impl }).dataSync();
        expect([p32[1], p32[3], p32[4], p32[5]]).toEqual([0, 0, 0, 0]);
        expect(Math.abs(p32[0] - 1) + Math.abs(p32[2] - 1)).toBeLessThan(1e-6);
      }
    });

    it(`k ≥ m: all ones, zero gradient (${impl})`, () => {
      const z = f64([0.1, -3, 2], [1, 3]);
      for (const k of [3, 4.5, 100]) {
        const { p, dz } = grad(z, k, f64([1, 2, 3], [1, 3]), impl);
        expect(Array.from(p)).toEqual([1, 1, 1]);
        expect(Array.from(dz)).toEqual([0, 0, 0]);
      }
    });

    it(`per-row integer budgets (${impl})`, () => {
      const m = 9;
      const z = f64(normals(3 * m, 5), [3, m]);
      const ks = [1, 4, 9];
      const p = sparsek(z, ks, { impl }).dataSync();
      const zd = z.dataSync();
      for (let r = 0; r < 3; r++) checkKkt(zd.subarray(r * m), p.subarray(r * m), m, ks[r], 1e-12);
      expect(Array.from(p.subarray(2 * m))).toEqual(new Array(m).fill(1));
    });
  }

  it('rows of a higher-rank tensor and a non-contiguous view', () => {
    const base = f64(
      normals(2 * 5 * 6, 8).map((x) => 2 * x),
      [2, 5, 6],
    );
    const view = base.permute([0, 2, 1]); // rows of length 5 along a strided axis
    const p = sparsek(view, 2).dataSync();
    const dense = sparsek(view.contiguous(), 2).dataSync();
    expect(Array.from(p)).toEqual(Array.from(dense));
    const zd = view.contiguous().dataSync();
    for (let r = 0; r < 12; r++) checkKkt(zd.subarray(r * 5), p.subarray(r * 5), 5, 2, 1e-12);
  });

  it('a non-finite value makes its row NaN (fused)', () => {
    const p = sparsek(f64([1, Number.NaN, 0, 0.5, 2, 1, Number.POSITIVE_INFINITY, 3, 0.2, 0.1, 0.4, 0], [3, 4]), 2).dataSync();
    expect(Array.from(p.subarray(0, 4)).every(Number.isNaN)).toBe(true);
    expect(Array.from(p.subarray(4, 8)).every(Number.isNaN)).toBe(true);
    expect(Array.from(p.subarray(8)).map((x) => +x.toFixed(12))).toEqual([0.525, 0.425, 0.725, 0.325]); // τ = −0.325
  });
});

describe('sparsek properties on random rows', () => {
  const cases: [number, number, number, number][] = [
    // rows, m, k, scale
    [20, 10, 3, 1],
    [8, 300, 8, 2],
    [16, 50, 1, 0.05],
    [6, 64, 2.5, 3],
    [5, 1000, 31, 0.01], // many fractional entries
  ];
  for (const [R, m, k, scale] of cases) {
    for (const dtype of ['float64', 'float32'] as const) {
      it(`R=${R} m=${m} k=${k} scale=${scale} ${dtype}: KKT, fused = reference`, () => {
        const data = normals(R * m, R + m).map((x) => x * scale);
        const z = tensor(dtype === 'float64' ? data : Float32Array.from(data), [R, m], { dtype });
        const zd = z.dataSync();
        const fused = sparsek(z, k).dataSync();
        const ref = sparsek(z, k, { impl: 'reference' }).dataSync();
        const tol = dtype === 'float64' ? 1e-12 : 3e-6;
        for (let r = 0; r < R; r++) checkKkt(zd.subarray(r * m), fused.subarray(r * m), m, k, tol);
        for (let i = 0; i < R * m; i++) expect(Math.abs(fused[i] - ref[i])).toBeLessThanOrEqual(tol * 10);
      });
    }
  }
});

describe('sparsek gradcheck (float64)', () => {
  for (const impl of impls) {
    it(`finite differences (${impl})`, () => {
      const z = f64(normals(4 * 12, 21), [4, 12]);
      const w = f64(normals(4 * 12, 22), [4, 12]);
      const f = (x: Tensor) => sum(mul(sparsek(x, [1, 3, 5, 7], { impl }), w));
      const report = gradcheck(f, [z], { eps: 1e-7, atol: 1e-7, rtol: 1e-5, raise: false });
      expect(report.ok, report.message).toBe(true);
    });
  }
});

describe('sparsek errors', () => {
  const z = f64([1, 2, 3, 4], [2, 2]);
  const cases: [string, () => unknown, RegExp][] = [
    ['k = 0', () => sparsek(z, 0), /^sparsek: k must be a finite number > 0, got 0$/],
    ['k < 0', () => sparsek(z, -2), /^sparsek: k must be a finite number > 0, got -2$/],
    ['k NaN', () => sparsek(z, Number.NaN), /k must be a finite number > 0, got NaN/],
    ['per-row length', () => sparsek(z, [1, 2, 3]), /^sparsek: k has 3 entries but the input has 2 rows/],
    ['per-row non-integer', () => sparsek(z, [1, 1.5]), /^sparsek: k\[1\] must be an integer > 0, got 1.5$/],
    ['per-row zero', () => sparsek(z, [0, 1]), /^sparsek: k\[0\] must be an integer > 0, got 0$/],
    ['k a string', () => sparsek(z, '2' as unknown as number), /^sparsek: k must be a number > 0 or one integer per row, got string$/],
    ['z int32', () => sparsek(tensor([1, 2], [2], { dtype: 'int32' }), 1), /^sparsek: z must be float32 or float64, got int32\[2\]$/],
    ['z not a tensor', () => sparsek([1, 2] as unknown as Tensor, 1), /^sparsek: z must be a Tensor, got an array/],
    ['impl', () => sparsek(z, 1, { impl: 'fast' as 'fused' }), /^sparsek: opts.impl must be 'fused' or 'reference', got "fast"$/],
  ];
  for (const [name, fn, re] of cases) {
    it(name, () => {
      throwsNaming(fn, re);
    });
  }
});
