import { gradcheck } from '@foxgate/autograd';
import { mul, sum, type Tensor, tensor } from '@foxgate/tensor';
import { describe, expect, it } from 'vitest';
import { forgettingAttention, softmaxAttention } from '../src/index.js';
import { logsigmoid, normals, uniforms } from './util/fox.js';

/**
 * Finite differences in float64 on the CPU: the composed reference (autograd through its
 * primitives) and the fused CPU kernel (its hand-written backward), on tiny shapes.
 */
function inputs(B: number, Tq: number, Tk: number, H: number, D: number, seed: number): Tensor[] {
  const f = (a: Float64Array, shape: number[]) => tensor(a, shape, { dtype: 'float64' });
  return [
    f(normals(B * Tq * H * D, seed), [B, Tq, H, D]),
    f(normals(B * Tk * H * D, seed + 1), [B, Tk, H, D]),
    f(normals(B * Tk * H * D, seed + 2), [B, Tk, H, D]),
    f(uniforms(B * Tk * H, seed + 3, -1, 3).map(logsigmoid), [B, Tk, H]),
  ];
}

const shapes: [number, number, number, number, number][] = [
  [1, 4, 4, 1, 3],
  [2, 3, 5, 2, 2],
];

describe.each(shapes)('gradcheck B=%i Tq=%i Tk=%i H=%i D=%i', (B, Tq, Tk, H, D) => {
  const w = tensor(normals(B * Tq * H * D, 77), [B, Tq, H, D], { dtype: 'float64' });
  for (const impl of ['reference', 'fused'] as const) {
    it(`forgettingAttention (${impl})`, () => {
      const f = (q: Tensor, k: Tensor, v: Tensor, logF: Tensor) => sum(mul(forgettingAttention(q, k, v, logF, { impl, scale: 0.8 }), w));
      const report = gradcheck(f, inputs(B, Tq, Tk, H, D, 3), { eps: 1e-6, atol: 1e-7, rtol: 1e-5, raise: false });
      expect(report.ok, report.message).toBe(true);
    });
    it(`softmaxAttention (${impl})`, () => {
      const f = (q: Tensor, k: Tensor, v: Tensor) => sum(mul(softmaxAttention(q, k, v, { impl }), w));
      const report = gradcheck(f, inputs(B, Tq, Tk, H, D, 9).slice(0, 3), { eps: 1e-6, atol: 1e-7, rtol: 1e-5, raise: false });
      expect(report.ok, report.message).toBe(true);
    });
  }
});

describe('gradcheck with ACP pruning', () => {
  it('the fused op differentiates the pruned function (T=70: the far tile is pruned)', () => {
    const [q, k, v, logF] = inputs(1, 70, 70, 1, 2, 13);
    const w = tensor(normals(140, 78), [1, 70, 1, 2], { dtype: 'float64' });
    const opts = { acp: { delta: 0 } }; // Λ_64 − Λ_63 = logF_64 < 0: the off-diagonal tile goes
    const { out, stats } = forgettingAttention(q, k, v, logF, { ...opts, stats: true });
    expect(stats.computedBlocks.itemSync()).toBe(2);
    expect(stats.totalBlocks).toBe(3);
    expect(stats.fraction.itemSync()).toBeCloseTo(2 / 3, 6);
    for (const t of [out, stats.fraction, stats.computedBlocks]) t.dispose();
    const f = (a: Tensor, b: Tensor, c: Tensor, d: Tensor) => sum(mul(forgettingAttention(a, b, c, d, opts), w));
    const report = gradcheck(f, [q, k, v, logF], { eps: 1e-6, atol: 1e-7, rtol: 1e-5, raise: false });
    expect(report.ok, report.message).toBe(true);
    const g = (a: Tensor, b: Tensor, c: Tensor, d: Tensor) => sum(mul(forgettingAttention(a, b, c, d, { ...opts, impl: 'reference' }), w));
    const refReport = gradcheck(g, [q, k, v, logF], { eps: 1e-6, atol: 1e-7, rtol: 1e-5, raise: false });
    expect(refReport.ok, refReport.message).toBe(true);
  });
});
