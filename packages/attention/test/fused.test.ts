import { type Backend, slice, tensor } from '@foxgate/tensor';
import { destroyTestWebGPU, testWebGPU } from '@foxgate/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { forgettingAttention } from '../src/index.js';
import { ALL_CLOSE, compareResults, far, logsigmoid, normals, problem, runFox, uniforms } from './util/fox.js';

/**
 * The fused kernels (CPU, and WGSL when an adapter exists) against the composed reference run in
 * float64 on the CPU, on shapes that exercise odd T, Tq < Tk, several tiles, B·H > 1 and head
 * dims that are not multiples of 4 or of the tile widths.
 */
const gpu = (await testWebGPU()) as unknown as Backend | null;
afterAll(destroyTestWebGPU);

const shapes: [B: number, Tq: number, Tk: number, H: number, D: number, gate: [number, number]][] = [
  [1, 7, 7, 2, 8, [0, 5]],
  [2, 13, 21, 1, 24, [-2, 6]],
  [1, 65, 65, 2, 64, [0, 5]],
  [1, 33, 70, 2, 100, [-3, 1]],
  [2, 9, 9, 1, 128, [0, 5]],
  [1, 67, 131, 2, 24, [0, 4]],
  [1, 5, 5, 3, 6, [0, 5]],
];

describe.each(shapes)('B=%i Tq=%i Tk=%i H=%i D=%i', (B, Tq, Tk, H, D, gate) => {
  const p = problem(B, Tq, Tk, H, D, 7 * Tq + D, gate);
  const reference = runFox(p, 'cpu', 'float64', { impl: 'reference' });

  it('fused cpu float32 matches the float64 reference', async () => {
    const fused = await runFox(p, 'cpu', 'float32', { impl: 'fused' });
    expect(compareResults(fused, await reference)).toEqual(ALL_CLOSE);
  });

  it('fused cpu float64 matches the float64 reference to 1e-10', async () => {
    const fused = await runFox(p, 'cpu', 'float64', { impl: 'fused' });
    expect(compareResults(fused, await reference, 1e-10, 1e-9)).toEqual(ALL_CLOSE);
  });

  it.skipIf(!gpu)('fused webgpu matches the float64 reference', async () => {
    const fused = await runFox(p, gpu as Backend, 'float32', { impl: 'fused' });
    expect(compareResults(fused, await reference)).toEqual(ALL_CLOSE);
  });

  it.skipIf(!gpu)('reference on webgpu matches the float64 reference', async () => {
    if (Tq * Tk > 5000) return;
    const ref32 = await runFox(p, gpu as Backend, 'float32', { impl: 'reference' });
    expect(compareResults(ref32, await reference)).toEqual(ALL_CLOSE);
  });
});

describe('a long sequence on webgpu', () => {
  // T = 3001: the dlogF scan gives each of its 256 threads a 12-element chunk (the last ones
  // partial) and carries the later chunks' total into each; gates in [-1, 3] keep long memories
  it.skipIf(!gpu)('fused webgpu matches the fused float64 cpu kernel, dlogF included', async () => {
    const p = problem(1, 2990, 3001, 1, 8, 5, [-1, 3], 0.5);
    const want = await runFox(p, 'cpu', 'float64', { impl: 'fused' });
    const got = await runFox(p, gpu as Backend, 'float32', { impl: 'fused' });
    expect(compareResults(got, want)).toEqual(ALL_CLOSE);
  });
});

describe('softmax attention (no forget gate)', () => {
  const p = problem(2, 19, 40, 2, 20, 99);
  const reference = runFox(p, 'cpu', 'float64', { impl: 'reference', gated: false });

  it('equals forgetting attention with logF = 0', async () => {
    const zero = { ...p, logF: new Float64Array(p.logF.length) };
    const fox = await runFox(zero, 'cpu', 'float64', { impl: 'reference' });
    const r = await reference;
    expect(compareResults({ ...fox, dlogF: null }, r, 1e-12, 1e-10)).toEqual(ALL_CLOSE);
  });

  it('fused cpu matches the reference', async () => {
    expect(compareResults(await runFox(p, 'cpu', 'float32', { gated: false }), await reference)).toEqual(ALL_CLOSE);
  });

  it.skipIf(!gpu)('fused webgpu matches the reference', async () => {
    expect(compareResults(await runFox(p, gpu as Backend, 'float32', { gated: false }), await reference)).toEqual(ALL_CLOSE);
  });

  it('matches a direct float64 computation on a hand-sized case', async () => {
    // B=1, Tq=2, Tk=3, H=1, D=1: query 0 sits at key 1 and sees keys 0..1, query 1 sees 0..2
    const q = [1, -2];
    const k = [0.5, 1, -1];
    const v = [3, -1, 2];
    const prob = {
      B: 1,
      Tq: 2,
      Tk: 3,
      H: 1,
      D: 1,
      q: Float64Array.from(q),
      k: Float64Array.from(k),
      v: Float64Array.from(v),
      logF: new Float64Array(3),
      dO: Float64Array.from([1, 1]),
    };
    const r = await runFox(prob, 'cpu', 'float64', { gated: false, scale: 0.7 });
    const expectRow = (qi: number, n: number) => {
      const w = k.slice(0, n).map((kj) => Math.exp(0.7 * qi * kj));
      const z = w.reduce((a, b) => a + b, 0);
      return w.reduce((acc, wj, j) => acc + (wj / z) * v[j], 0);
    };
    expect(r.o[0]).toBeCloseTo(expectRow(q[0], 2), 12);
    expect(r.o[1]).toBeCloseTo(expectRow(q[1], 3), 12);
  });
});

describe('strided and offset views as inputs', () => {
  // q, k, v sliced out of one packed [B,T,3,H,D] tensor, logF a column slice: non-contiguous views
  const B = 2;
  const T = 37;
  const H = 2;
  const D = 12;
  const packed = normals(B * T * 3 * H * D, 5);
  const gates = uniforms(B * T * H * 2, 6, -1, 4).map(logsigmoid);
  const targets: [string, () => Backend | string][] = [['cpu', () => 'cpu']];
  if (gpu) targets.push(['webgpu', () => gpu as Backend]);

  it.each(targets)('give the same result as contiguous copies (%s)', async (_name, backend) => {
    const be = backend();
    const qkv = tensor(Float32Array.from(packed), [B, T, 3, H, D], { backend: be });
    const g2 = tensor(Float32Array.from(gates), [B, T, H, 2], { backend: be });
    const [q, k, v] = [0, 1, 2].map((i) => slice(qkv, [null, null, i]));
    const logF = slice(g2, [null, null, null, 1]);
    const out = forgettingAttention(q, k, v, logF, { acp: true });
    const dense = forgettingAttention(q.contiguous(), k.contiguous(), v.contiguous(), logF.contiguous(), { acp: true });
    expect(far(await out.data(), await dense.data(), 0, 0)).toBeNull();
    for (const t of [qkv, g2, q, k, v, logF, out, dense]) t.dispose();
  });
});
