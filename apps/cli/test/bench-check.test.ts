import { forgettingAttention } from '@foxgate/attention';
import { valueAndGrad } from '@foxgate/autograd';
import { add, logsigmoid, mul, randomNormal, randomUniform, sum, type Tensor, tensor } from '@foxgate/tensor';
import { describe, expect, it } from 'vitest';
import { checkCase } from '../src/bench/attention.js';

/** The float64 host check of `bench attention`: passes correct kernels, catches wrong ones. */
describe('bench attention: checkCase', () => {
  const [B, T, H, D] = [2, 100, 2, 8];
  const sh = [B, T, H, D];
  const x = {
    q: randomNormal([1, 9], sh),
    k: randomNormal([2, 9], sh),
    v: randomNormal([3, 9], sh),
    dO: randomNormal([4, 9], sh),
    logF: logsigmoid(randomUniform([5, 9], [B, T, H], { low: 0, high: 5 })),
  };
  const run = (acp: boolean) =>
    valueAndGrad((p: { q: Tensor; k: Tensor; v: Tensor; logF: Tensor }) => {
      const o = forgettingAttention(p.q, p.k, p.v, p.logF, { acp });
      return { loss: sum(mul(o, x.dO)), aux: o };
    })({ q: x.q, k: x.k, v: x.v, logF: x.logF });

  it('passes the fused CPU kernel (with and without ACP) at float32 rounding', async () => {
    for (const acp of [false, true]) {
      const { aux, grads } = run(acp);
      const err = await checkCase(x, { o: aux, dq: grads.q, dk: grads.k, dv: grads.v, dlogF: grads.logF }, acp);
      expect(Object.keys(err)).toEqual(['o', 'dq', 'dk', 'dv', 'dlogF']);
      for (const [name, e] of Object.entries(err)) expect(e, name).toBeLessThan(1e-5);
    }
  });

  it('catches a wrong output row, a wrong last key gradient and a NaN', async () => {
    const { aux, grads } = run(false);
    // the last query row (checked) off by 1%; dv at the last key (checked) off by 1%; a NaN in dq at T/2
    const bump = (t: Tensor, at: number, f: (x: number) => number) => {
      const d = Float32Array.from(t.dataSync());
      d[at] = f(d[at]);
      return tensor(d, [...t.shape]);
    };
    const last = ((0 * T + (T - 1)) * H + 0) * D;
    const mid = ((0 * T + T / 2) * H + 0) * D + 3;
    const o = bump(aux, last, (v) => v * 1.01 + 0.01);
    const dv = bump(grads.v, last, (v) => v * 1.01 + 0.01);
    const dq = bump(grads.q, mid, () => Number.NaN);
    const err = await checkCase(x, { o, dq, dk: grads.k, dv, dlogF: add(grads.logF, 0) }, false);
    expect(err.o).toBeGreaterThan(1e-3);
    expect(err.dv).toBeGreaterThan(1e-3);
    expect(err.dq).toBe(Number.POSITIVE_INFINITY);
    expect(err.dk).toBeLessThan(1e-5);
  });
});
