import { gradcheck, valueAndGrad } from '@foxgate/autograd';
import {
  add,
  type Backend,
  dispose,
  matmul,
  memoryStats,
  mul,
  narrow,
  reshape,
  rmsNorm,
  silu,
  type Tensor,
  tensor,
  transpose,
} from '@foxgate/tensor';
import { destroyTestWebGPU, testWebGPU, throwsNaming } from '@foxgate/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { fusedAddRmsNorm, fusedRmsNorm } from '../src/layers/fused-norm.js';
import { fusedSwiglu } from '../src/layers/fused-swiglu.js';
import { swigluInRowChunks, swigluRowChunks } from '../src/layers/swiglu.js';
import { f64, maxDiff, relMaxError, values, wsum } from './util.js';

const gpu = (await testWebGPU()) as unknown as Backend | null;
afterAll(destroyTestWebGPU, 60_000);

/** `x·Wᵀ (+ b)`. */
function lin(x: Tensor, w: Tensor, b: Tensor | null): Tensor {
  const y = matmul(x, transpose(w));
  return b ? add(y, b) : y;
}

/** The composed SwiGLU MLP: gate_proj, narrow, silu, mul, down_proj. */
function composedSwiglu(x: Tensor, wg: Tensor, bg: Tensor | null, wd: Tensor, bd: Tensor | null): Tensor {
  const gu = lin(x, wg, bg);
  const H = gu.shape[gu.rank - 1] / 2;
  return lin(mul(silu(narrow(gu, -1, 0, H)), narrow(gu, -1, H, H)), wd, bd);
}

/** The MLP inputs [x, wg, wd, bg?, bd?] as float64 CPU tensors (gate pre-activations reach ±`amp`·…). */
function mlpInputs(N: number, dim: number, H: number, bias: boolean, seed: number): Tensor[] {
  const xs = [
    f64(values(N * dim, seed), [1, N, dim]),
    f64(values(2 * H * dim, seed + 1), [2 * H, dim]),
    f64(values(dim * H, seed + 2), [dim, H]),
  ];
  if (bias) xs.push(f64(values(2 * H, seed + 3), [2 * H]), f64(values(dim, seed + 4), [dim]));
  return xs;
}

/** Applies `fn` to [x, wg, wd, bg?, bd?]. */
const mlpOf =
  (fn: typeof composedSwiglu) =>
  (...xs: Tensor[]) =>
    fn(xs[0], xs[1], xs[3] ?? null, xs[2], xs[4] ?? null);

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

describe('fusedSwiglu (CPU)', () => {
  it('equals the composed gate_proj/narrow/silu/mul/down_proj in value and gradients (float64, with and without biases)', async () => {
    for (const bias of [true, false]) {
      const inputs = mlpInputs(5, 3, 7, bias, 11);
      const fused = await lossGrads(mlpOf(fusedSwiglu), inputs);
      const ref = await lossGrads(mlpOf(composedSwiglu), inputs);
      expect(relMaxError(fused.y, ref.y)).toBeLessThan(1e-13);
      for (let i = 0; i < inputs.length; i++) expect(relMaxError(fused.grads[i], ref.grads[i])).toBeLessThan(1e-12);
      dispose(inputs);
    }
  });

  it('passes gradcheck against float64 finite differences in x, both weights and both biases, including large |gate|', () => {
    const inputs = mlpInputs(3, 4, 2, true, 14);
    const big = f64(
      [...values(3 * 4, 20, -1, 1)].map((v, i) => (i % 2 ? 10 * v : v)),
      [1, 3, 4],
    ); // gates up to ~±40
    inputs[0].dispose();
    inputs[0] = big;
    expect(gradcheck((...xs) => wsum(mlpOf(fusedSwiglu)(...xs)), inputs).ok).toBe(true);
    dispose(inputs);
  });
});

/** swiglu with the gate_proj output held to `maxBytes` per buffer, on [x, wg, wd, bg?, bd?]. */
const chunkedOf =
  (maxBytes: number) =>
  (...xs: Tensor[]) =>
    swigluInRowChunks(
      { gate_proj: { weight: xs[1], ...(xs[3] ? { bias: xs[3] } : {}) }, down_proj: { weight: xs[2], ...(xs[4] ? { bias: xs[4] } : {}) } },
      xs[0],
      maxBytes,
    );

describe('swiglu in row chunks (a gate_proj output past the binding limit)', () => {
  it('chunks of equal size, multiples of 256 rows where they fit', () => {
    // B·T = 32·4096 rows of 16 KiB at a 2 GiB − 4 binding: at most 131,071 rows a chunk
    expect(swigluRowChunks(131072, 131071)).toEqual([65536, 65536]);
    expect(swigluRowChunks(300000, 131071)).toEqual([100096, 100096, 99808]);
    expect(swigluRowChunks(5, 2)).toEqual([2, 2, 1]);
    expect(swigluRowChunks(1000, 999)).toEqual([512, 488]);
    expect(swigluRowChunks(7, 7)).toEqual([7]);
  });
  it('equals the one-buffer op in value and gradients (float64; 5 rows in chunks of 2, 2, 1), frees its pieces, and refuses a row over the limit', async () => {
    for (const bias of [true, false]) {
      const inputs = mlpInputs(5, 3, 7, bias, 31);
      const one = await lossGrads(mlpOf(fusedSwiglu), inputs);
      const perRow = 2 * 7 * 8;
      const chunked = await lossGrads(chunkedOf(2 * perRow + 10), inputs);
      expect(relMaxError(chunked.y, one.y)).toBeLessThan(1e-14);
      for (let i = 0; i < inputs.length; i++) expect(relMaxError(chunked.grads[i], one.grads[i])).toBeLessThan(1e-13);
      const live = memoryStats().backends.cpu.tensors;
      chunkedOf(perRow)(...inputs).dispose();
      expect(memoryStats().backends.cpu.tensors).toBe(live);
      throwsNaming(() => chunkedOf(perRow - 1)(...inputs), 'swiglu', 'binding limit');
      dispose(inputs);
    }
  });
});

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

  it('swiglu forward and gradients: odd hidden (1, 37), with and without biases', async () => {
    for (const [N, dim, H] of [
      [3, 2, 1],
      [65, 5, 37],
    ]) {
      for (const bias of [true, false]) {
        const inputs = mlpInputs(N, dim, H, bias, N + H);
        const ref = await lossGrads(mlpOf(composedSwiglu), inputs);
        const gi = inputs.map(f32);
        const got = await lossGrads(mlpOf(fusedSwiglu), gi);
        expect(relMaxError(got.y, ref.y)).toBeLessThan(1e-5);
        for (let i = 0; i < inputs.length; i++) expect(relMaxError(got.grads[i], ref.grads[i])).toBeLessThan(1e-4);
        // the same in row chunks of 16 (the last one partial)
        const chunked = await lossGrads(chunkedOf(16 * 2 * H * 4), gi);
        expect(relMaxError(chunked.y, ref.y)).toBeLessThan(1e-5);
        for (let i = 0; i < inputs.length; i++) expect(relMaxError(chunked.grads[i], ref.grads[i])).toBeLessThan(1e-4);
        dispose([...inputs, ...gi]);
      }
    }
  });
});
