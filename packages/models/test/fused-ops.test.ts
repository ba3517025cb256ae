import { gradcheck, valueAndGrad } from '@foxgate/autograd';
import { add, type Backend, dispose, matmul, mul, narrow, reshape, rmsNorm, silu, type Tensor, tensor, transpose } from '@foxgate/tensor';
import { destroyTestWebGPU, testWebGPU } from '@foxgate/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { fusedAddRmsNorm, fusedRmsNorm } from '../src/layers/fused-norm.js';
import { fusedSwigluDown } from '../src/layers/fused-swiglu.js';
import { f64, maxDiff, relMaxError, values, wsum } from './util.js';

const gpu = (await testWebGPU()) as unknown as Backend | null;
afterAll(destroyTestWebGPU, 60_000);

/** The composed SwiGLU after gate_proj: narrow, silu, mul, the down matmul (+ bias). */
function composedSwiglu(gu: Tensor, w: Tensor, b: Tensor | null): Tensor {
  const H = gu.shape[gu.rank - 1] / 2;
  const h = mul(silu(narrow(gu, -1, 0, H)), narrow(gu, -1, H, H));
  const y = matmul(h, transpose(w));
  return b ? add(y, b) : y;
}

/** Value and gradients of wsum(f(inputs)) (all inputs differentiated), read back as plain arrays. */
async function lossGrads(f: (...xs: Tensor[]) => Tensor, inputs: Tensor[]): Promise<{ y: number[]; grads: number[][] }> {
  const r = valueAndGrad((xs: Tensor[]) => wsum(f(...xs)))(inputs);
  const yT = f(...inputs);
  const y = [...(await yT.data())];
  const grads = await Promise.all(r.grads.map(async (g) => [...(await g.data())]));
  dispose([r, yT]);
  return { y, grads };
}

describe('fusedRmsNorm (CPU)', () => {
  it('equals tensor’s composite rmsNorm in value and gradients (float64, odd sizes, with and without weight)', async () => {
    for (const [shape, eps] of [
      [[3, 5, 7], 1e-6],
      [[1, 1], 0],
      [[4, 33], 1e-3],
    ] as [number[], number][]) {
      const D = shape[shape.length - 1];
      const n = shape.reduce((a, b) => a * b, 1);
      const x = f64(values(n, 1), shape);
      const w = f64(values(D, 2), [D]);
      const fused = await lossGrads((a, b) => fusedRmsNorm(a, b, eps), [x, w]);
      const ref = await lossGrads((a, b) => rmsNorm(a, b, eps), [x, w]);
      expect(maxDiff(fused.y, ref.y)).toBeLessThan(1e-13);
      // D = 1: dx is 0 up to rounding (y = x/|x| when eps = 0), so compare it absolutely
      const dxErr = D === 1 ? maxDiff : relMaxError;
      expect(dxErr(fused.grads[0], ref.grads[0])).toBeLessThan(1e-12);
      expect(relMaxError(fused.grads[1], ref.grads[1])).toBeLessThan(1e-12);
      const fusedNw = await lossGrads((a) => fusedRmsNorm(a, null, eps), [x]);
      const refNw = await lossGrads((a) => rmsNorm(a, null, eps), [x]);
      expect(maxDiff(fusedNw.y, refNw.y)).toBeLessThan(1e-13);
      expect(dxErr(fusedNw.grads[0], refNw.grads[0])).toBeLessThan(1e-12);
      dispose([x, w]);
    }
  });

  it('passes gradcheck against float64 finite differences in x and weight, and on a transposed x', () => {
    const x = f64(values(2 * 3 * 5, 3), [2, 3, 5]);
    const w = f64(values(5, 4), [5]);
    expect(gradcheck((a, b) => wsum(fusedRmsNorm(a, b, 1e-6)), [x, w]).ok).toBe(true);
    expect(gradcheck((a) => wsum(fusedRmsNorm(a, null, 1e-6)), [x]).ok).toBe(true);
    const xt = f64(values(4 * 5, 5), [4, 5]);
    const w4 = f64(values(4, 6, 0.5, 1.5), [4]);
    expect(gradcheck((a, b) => wsum(fusedRmsNorm(transpose(a), b, 1e-6)), [xt, w4]).ok).toBe(true);
    dispose([x, w, xt, w4]);
  });

  it('a per-head [H·D] gain on x [..., H, D]: equals rmsNorm then the [H, D] gain; passes gradcheck', async () => {
    const x = f64(values(2 * 3 * 5 * 4, 61), [2, 3, 5, 4]);
    const w = f64(values(5 * 4, 62), [20]);
    const fused = await lossGrads((a, b) => fusedRmsNorm(a, b, 1e-6), [x, w]);
    const ref = await lossGrads((a, b) => mul(rmsNorm(a, null, 1e-6), reshape(b, [5, 4])), [x, w]);
    expect(maxDiff(fused.y, ref.y)).toBeLessThan(1e-13);
    for (let i = 0; i < 2; i++) expect(relMaxError(fused.grads[i], ref.grads[i])).toBeLessThan(1e-12);
    const xs = f64(values(3 * 2 * 3, 63), [3, 2, 3]);
    const ws = f64(values(6, 64), [6]);
    expect(gradcheck((a, b) => wsum(fusedRmsNorm(a, b, 1e-6)), [xs, ws]).ok).toBe(true);
    dispose([x, w, xs, ws]);
  });

  it('float32: the forward matches float64 plain loops to float32 rounding', () => {
    const xs = values(6 * 9, 7);
    const ws = values(9, 8);
    const x = tensor(Float32Array.from(xs), [6, 9], { backend: 'cpu' });
    const w = tensor(Float32Array.from(ws), [9], { backend: 'cpu' });
    const y = fusedRmsNorm(x, w, 1e-6);
    const ref = rmsNorm(f64(xs, [6, 9]), f64(ws, [9]), 1e-6);
    expect(y.dtype).toBe('float32');
    expect(relMaxError(y.dataSync(), ref.dataSync())).toBeLessThan(1e-6);
    dispose([x, w, y, ref]);
  });
});

/** The composed residual add + norm: [x + res, rmsNorm(x + res)·w]. */
function composedAddNorm(x: Tensor, res: Tensor, w: Tensor | null): [Tensor, Tensor] {
  const sm = add(x, res);
  return [sm, rmsNorm(sm, w, 1e-6)];
}

/** Losses that use the sum and the norm output, only the norm output, only the sum. */
const addNormUses: [string, (s: Tensor, y: Tensor) => Tensor][] = [
  ['both', (sm, y) => add(wsum(y), wsum(mul(sm, 0.5)))],
  ['norm only', (_sm, y) => wsum(y)],
  ['sum only', (sm) => wsum(sm)],
];

describe('fusedAddRmsNorm (CPU)', () => {
  it('equals add then rmsNorm in values and gradients (float64), whichever outputs the loss uses', async () => {
    const x = f64(values(3 * 4 * 9, 41), [3, 4, 9]);
    const r = f64(values(3 * 4 * 9, 42), [3, 4, 9]);
    const w = f64(values(9, 43), [9]);
    for (const [, use] of addNormUses) {
      for (const inputs of [
        [x, r, w],
        [x, r],
      ]) {
        const run =
          (fn: typeof composedAddNorm) =>
          (...xs: Tensor[]) =>
            use(...fn(xs[0], xs[1], xs[2] ?? null));
        const fused = await lossGrads(
          run((a, b, c) => fusedAddRmsNorm(a, b, c, 1e-6)),
          inputs,
        );
        const ref = await lossGrads(run(composedAddNorm), inputs);
        expect(maxDiff(fused.y, ref.y)).toBeLessThan(1e-12);
        for (let i = 0; i < inputs.length; i++) expect(relMaxError(fused.grads[i], ref.grads[i])).toBeLessThan(1e-12);
      }
    }
    dispose([x, r, w]);
  });

  it('passes gradcheck against float64 finite differences in x, res and weight', () => {
    const x = f64(values(2 * 7, 44), [2, 7]);
    const r = f64(values(2 * 7, 45), [2, 7]);
    const w = f64(values(7, 46), [7]);
    const f = (a: Tensor, b: Tensor, c: Tensor) => addNormUses[0][1](...fusedAddRmsNorm(a, b, c, 1e-6));
    expect(gradcheck(f, [x, r, w]).ok).toBe(true);
    dispose([x, r, w]);
  });
});

describe('fusedSwigluDown (CPU)', () => {
  it('equals the composed narrow/silu/mul/matmul in value and gradients (float64, with and without bias)', async () => {
    const [N, H, dim] = [5, 7, 3];
    const gu = f64(values(N * 2 * H, 11, -4, 4), [1, N, 2 * H]);
    const w = f64(values(dim * H, 12), [dim, H]);
    const b = f64(values(dim, 13), [dim]);
    for (const inputs of [
      [gu, w, b],
      [gu, w],
    ]) {
      const f =
        (fn: typeof composedSwiglu) =>
        (...xs: Tensor[]) =>
          fn(xs[0], xs[1], xs[2] ?? null);
      const fused = await lossGrads(f(fusedSwigluDown), inputs);
      const ref = await lossGrads(f(composedSwiglu), inputs);
      expect(relMaxError(fused.y, ref.y)).toBeLessThan(1e-13);
      for (let i = 0; i < inputs.length; i++) expect(relMaxError(fused.grads[i], ref.grads[i])).toBeLessThan(1e-12);
    }
    dispose([gu, w, b]);
  });

  it('passes gradcheck against float64 finite differences in gu, weight and bias, including large |gate|', () => {
    const gu = f64([...values(3 * 8, 14, -3, 3).slice(0, 20), 30, -30, 40, -40], [3, 8]);
    const w = f64(values(2 * 4, 15), [2, 4]);
    const b = f64(values(2, 16), [2]);
    expect(gradcheck((a, c, d) => wsum(fusedSwigluDown(a, c, d)), [gu, w, b]).ok).toBe(true);
    dispose([gu, w, b]);
  });
});

// lavapipe compiles each new kernel in software: generous timeouts
describe.skipIf(!gpu)('fused RMSNorm and SwiGLU on WebGPU against float64 CPU references', { timeout: 120_000 }, () => {
  const f32 = (t: Tensor) => tensor(Float32Array.from(t.dataSync()), [...t.shape], { backend: gpu as Backend });

  it('rmsNorm forward and gradients: odd D (1, 37, 300), many rows (partial row blocks), with and without weight', async () => {
    for (const [N, D] of [
      [3, 1],
      [1100, 37],
      [7, 300],
      [600, 64],
    ]) {
      const x = f64(values(N * D, N + D, -3, 3), [N, D]);
      const w = f64(values(D, D, 0.5, 1.5), [D]);
      const ref = await lossGrads((a, b) => rmsNorm(a, b, 1e-6), [x, w]);
      const [xg, wg] = [f32(x), f32(w)];
      const got = await lossGrads((a, b) => fusedRmsNorm(a, b, 1e-6), [xg, wg]);
      expect(relMaxError(got.y, ref.y)).toBeLessThan(1e-5);
      // D = 1: dx is 0 up to rounding (cancellation), so compare it absolutely
      const dxErr = D === 1 ? maxDiff : relMaxError;
      expect(dxErr(got.grads[0], ref.grads[0])).toBeLessThan(1e-4);
      expect(relMaxError(got.grads[1], ref.grads[1])).toBeLessThan(1e-4);
      const refNw = await lossGrads((a) => rmsNorm(a, null, 1e-6), [x]);
      const gotNw = await lossGrads((a) => fusedRmsNorm(a, null, 1e-6), [xg]);
      expect(relMaxError(gotNw.y, refNw.y)).toBeLessThan(1e-5);
      expect(dxErr(gotNw.grads[0], refNw.grads[0])).toBeLessThan(1e-4);
      dispose([x, w, xg, wg]);
    }
  });

  it('rmsNorm with a per-head [H·D] gain: 1100 rows of 3 heads × 37 (partial row blocks per head)', async () => {
    const [M, H, D] = [1100, 3, 37];
    const x = f64(values(M * H * D, 71, -3, 3), [M, H, D]);
    const w = f64(values(H * D, 72, 0.5, 1.5), [H * D]);
    const ref = await lossGrads((a, b) => mul(rmsNorm(a, null, 1e-6), reshape(b, [H, D])), [x, w]);
    const gi = [x, w].map(f32);
    const got = await lossGrads((a, b) => fusedRmsNorm(a, b, 1e-6), gi);
    expect(relMaxError(got.y, ref.y)).toBeLessThan(1e-5);
    for (let i = 0; i < 2; i++) expect(relMaxError(got.grads[i], ref.grads[i])).toBeLessThan(1e-4);
    dispose([x, w, ...gi]);
  });

  it('rmsNorm of a strided view (an input offset and a transpose)', async () => {
    const x = f64(values(2 * 5 * 6, 21), [2, 5, 6]);
    const w = f64(values(5, 22), [5]);
    const f = (a: Tensor, b: Tensor) => fusedRmsNorm(transpose(narrow(a, 0, 1, 1), 1, 2), b, 1e-6);
    const ref = await lossGrads((a, b) => rmsNorm(transpose(narrow(a, 0, 1, 1), 1, 2), b, 1e-6), [x, w]);
    const got = await lossGrads(f, [f32(x), f32(w)]);
    expect(relMaxError(got.y, ref.y)).toBeLessThan(1e-5);
    for (let i = 0; i < 2; i++) expect(relMaxError(got.grads[i], ref.grads[i])).toBeLessThan(1e-4);
    dispose([x, w]);
  });

  it('add + rmsNorm forward and gradients (odd D 37 and 300, partial row blocks), whichever outputs the loss uses', async () => {
    for (const [N, D] of [
      [1100, 37],
      [5, 300],
    ]) {
      const x = f64(values(N * D, 51, -3, 3), [N, D]);
      const r = f64(values(N * D, 52, -3, 3), [N, D]);
      const w = f64(values(D, 53, 0.5, 1.5), [D]);
      for (const [, use] of addNormUses) {
        const ref = await lossGrads((a, b, c) => use(...composedAddNorm(a, b, c)), [x, r, w]);
        const gi = [x, r, w].map(f32);
        const got = await lossGrads((a, b, c) => use(...fusedAddRmsNorm(a, b, c, 1e-6)), gi);
        expect(relMaxError(got.y, ref.y)).toBeLessThan(1e-5);
        for (let i = 0; i < 3; i++) expect(relMaxError(got.grads[i], ref.grads[i])).toBeLessThan(1e-4);
        dispose(gi);
      }
      dispose([x, r, w]);
    }
  });

  it('swiglu forward and gradients: odd hidden (1, 37), with and without bias, gates up to ±40', async () => {
    for (const [N, H, dim] of [
      [3, 1, 2],
      [65, 37, 5],
    ]) {
      const gu = f64(values(N * 2 * H, N * H, -40, 40), [N, 2 * H]);
      const w = f64(values(dim * H, 31), [dim, H]);
      const b = f64(values(dim, 32), [dim]);
      for (const withBias of [true, false]) {
        const inputs = withBias ? [gu, w, b] : [gu, w];
        const ref = await lossGrads((...xs) => composedSwiglu(xs[0], xs[1], xs[2] ?? null), inputs);
        const gi = inputs.map(f32);
        const got = await lossGrads((...xs) => fusedSwigluDown(xs[0], xs[1], xs[2] ?? null), gi);
        expect(relMaxError(got.y, ref.y)).toBeLessThan(1e-5);
        for (let i = 0; i < inputs.length; i++) expect(relMaxError(got.grads[i], ref.grads[i])).toBeLessThan(1e-4);
        dispose(gi);
      }
      dispose([gu, w, b]);
    }
  });
});
