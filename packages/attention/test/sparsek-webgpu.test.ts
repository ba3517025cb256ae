import { valueAndGrad } from '@foxgate/autograd';
import { type Backend, memoryStats, mul, sum, type Tensor, tensor } from '@foxgate/tensor';
import { destroyTestWebGPU, testWebGPU } from '@foxgate/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { sparsek } from '../src/sparsek/op.js';
import { runSparsekGrad } from './util/sparsek-compare.js';
import { normals } from './util/sparsek-data.js';

/**
 * The WGSL kernels of SPARSEK (bisection + exact solve per workgroup, and the VJP) against the
 * float64 CPU kernel on random shapes: rows shorter and longer than the 256 threads, many rows
 * (folded grid), per-row budgets, ties, the degenerate and k ≥ m cases, non-finite rows.
 */
const gpu = await testWebGPU();
afterAll(destroyTestWebGPU);

function close(a: ArrayLike<number>, b: ArrayLike<number>, atol: number, rtol: number): string | null {
  if (a.length !== b.length) return `length ${a.length} != ${b.length}`;
  for (let i = 0; i < a.length; i++) {
    if (Number.isNaN(b[i]) && Number.isNaN(a[i])) continue;
    if (!(Math.abs(a[i] - b[i]) <= atol + rtol * Math.abs(b[i]))) return `element ${i}: got ${a[i]}, expected ${b[i]}`;
  }
  return null;
}

describe.skipIf(!gpu)('sparsek on WebGPU', () => {
  const b = gpu as unknown as Backend;
  const cases: { name: string; R: number; m: number; k: number | ((r: number) => number); scale: number }[] = [
    { name: 'short rows', R: 5, m: 10, k: 3, scale: 1 },
    { name: 'rows longer than the workgroup', R: 3, m: 1000, k: 20, scale: 2 },
    { name: 'many fractional entries', R: 4, m: 700, k: 40, scale: 0.02 },
    { name: 'k = 1', R: 8, m: 50, k: 1, scale: 1 },
    { name: 'non-integer k', R: 6, m: 33, k: 2.5, scale: 1 },
    { name: 'per-row budgets incl. k ≥ m', R: 6, m: 17, k: (r) => [1, 2, 5, 16, 17, 30][r], scale: 1 },
    { name: 'one-entry rows', R: 4, m: 1, k: 1, scale: 1 },
  ];
  for (const c of cases) {
    it(`${c.name}: R=${c.R} m=${c.m} (p and dz vs the float64 CPU kernel)`, async () => {
      const z = normals(c.R * c.m, c.R * 31 + c.m, c.scale);
      const g = normals(c.R * c.m, c.R * 37 + c.m);
      const k = typeof c.k === 'number' ? c.k : Array.from({ length: c.R }, (_, r) => (c.k as (r: number) => number)(r));
      const want = await runSparsekGrad(z, [c.R, c.m], k, g, 'cpu');
      const got = await runSparsekGrad(z, [c.R, c.m], k, g, b);
      expect(close(got.p, want.p, 2e-5, 1e-4)).toBeNull();
      expect(close(got.dz, want.dz, 2e-5, 1e-4)).toBeNull();
      for (let r = 0; r < c.R; r++) {
        let s = 0;
        for (let i = 0; i < c.m; i++) s += got.p[r * c.m + i];
        const kr = Array.isArray(k) ? k[r] : k;
        expect(Math.abs(s - Math.min(kr, c.m))).toBeLessThan(1e-4 * Math.max(1, kr));
      }
    });
  }

  it('70000 rows: folded grid, every row projected', async () => {
    const R = 70000;
    const m = 4;
    const z = normals(R * m, 3);
    const got = await runSparsekGrad(z, [R, m], 2, new Float64Array(R * m).fill(1), b);
    const want = await runSparsekGrad(z, [R, m], 2, new Float64Array(R * m).fill(1), 'cpu');
    expect(close(got.p, want.p, 2e-5, 1e-4)).toBeNull();
  });

  it('ties, a hard top-k row (zero gradient) and a non-finite row', async () => {
    const z = Float64Array.from([0.3, 0.3, 0.3, 0.3, 0.3, 5, 0, 4, 1.5, -2, 1, Number.NaN, 0, 0, 0]);
    const g = Float64Array.from([1, 2, 3, 4, 5, 1, -2, 3, 0.5, 7, 1, 1, 1, 1, 1]);
    const got = await runSparsekGrad(z, [3, 5], 2, g, b);
    expect(close(got.p.subarray(0, 5), [0.4, 0.4, 0.4, 0.4, 0.4], 1e-6, 0)).toBeNull();
    expect(close(got.dz.subarray(0, 5), [-2, -1, 0, 1, 2], 1e-5, 0)).toBeNull();
    expect(Array.from(got.p.subarray(5, 10))).toEqual([1, 0, 1, 0, 0]);
    expect(Array.from(got.dz.subarray(5, 10))).toEqual([0, 0, 0, 0, 0]);
    expect(Array.from(got.p.subarray(10)).every(Number.isNaN)).toBe(true);
  });

  it('a strided view is projected like its contiguous copy', async () => {
    const base = tensor(Float32Array.from(normals(6 * 40, 9)), [40, 6], { backend: b });
    const view = base.permute([1, 0]); // rows of 40 along the strided axis
    const copy = view.contiguous();
    const pa = sparsek(view, 5);
    const pc = sparsek(copy, 5);
    expect(Array.from(await pa.data())).toEqual(Array.from(await pc.data()));
    // disposed here: a tensor left to the garbage collector would change the next test's live count
    for (const t of [pa, pc, copy, view, base]) t.dispose();
  });

  it('forward and backward leave no live tensors behind (fused and reference)', async () => {
    const count = () => memoryStats().backends.webgpu?.tensors ?? 0;
    const z = tensor(Float32Array.from(normals(6 * 30, 4)), [6, 30], { backend: b });
    const g = tensor(Float32Array.from(normals(6 * 30, 5)), [6, 30], { backend: b });
    const before = count();
    for (const impl of ['fused', 'reference'] as const) {
      const p = sparsek(z, 4, { impl });
      await p.data();
      const { value, grads } = valueAndGrad((x: Tensor) => sum(mul(sparsek(x, [1, 2, 3, 4, 5, 6], { impl }), g)))(z);
      await grads.data();
      for (const x of [p, value, grads]) x.dispose();
    }
    expect(count()).toBe(before);
    z.dispose();
    g.dispose();
  });
});
