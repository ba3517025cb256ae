import { describe, expect, it } from 'vitest';
import { foxBackwardCpu, foxForwardCpu, lambdaCpu } from '../src/forgetting/cpu.js';
import { far, problem } from './util/fox.js';

/**
 * The CPU kernel on raw float64 arrays: the tiling (tile sizes, partial tiles, Tq < Tk) must not
 * change the result, and the saved log-normaliser must be log Σ_j exp(s_ij).
 */
describe('fused CPU kernel tiling', () => {
  const cases: [number, number, number, number, number][] = [
    [1, 50, 50, 2, 5],
    [2, 23, 61, 1, 7],
    [1, 1, 9, 3, 4],
  ];
  it.each(cases)('B=%i Tq=%i Tk=%i H=%i D=%i: tiles 64×64, 16×8, 3×5 and 1×1 agree', (B, Tq, Tk, H, D) => {
    const p = problem(B, Tq, Tk, H, D, 3 + Tq, [-1, 3]);
    const dims = { B, Tq, Tk, H, D };
    const run = (blockQ: number, blockK: number) => {
      const f = foxForwardCpu(p.q, p.k, p.v, p.logF, dims, { scale: 0.4, blockQ, blockK });
      return { f, g: foxBackwardCpu(p.q, p.k, p.v, p.logF, f.o, f.lse, p.dO, dims, { scale: 0.4, blockQ, blockK }) };
    };
    const base = run(64, 64);
    for (const [bq, bk] of [
      [16, 8],
      [3, 5],
      [1, 1],
    ]) {
      const r = run(bq, bk);
      for (const [name, a, b] of [
        ['o', r.f.o, base.f.o],
        ['lse', r.f.lse, base.f.lse],
        ['dq', r.g.dq, base.g.dq],
        ['dk', r.g.dk, base.g.dk],
        ['dv', r.g.dv, base.g.dv],
        ['dlogF', r.g.dlogF, base.g.dlogF],
      ] as const) {
        expect(far(a as Float64Array, b as Float64Array, 1e-12, 1e-10), `${name} at tiles ${bq}×${bk}`).toBeNull();
      }
    }
  });

  it('saves lse_i = log Σ_{j ≤ i+Tk−Tq} exp(scale·q_i·k_j + Λ_i − Λ_j)', () => {
    const p = problem(1, 6, 9, 1, 3, 17);
    const dims = { B: 1, Tq: 6, Tk: 9, H: 1, D: 3 };
    const { lse } = foxForwardCpu(p.q, p.k, p.v, p.logF, dims, { scale: 0.9 });
    const lam = lambdaCpu(p.logF, dims, false);
    for (let i = 0; i < 6; i++) {
      let z = 0;
      for (let j = 0; j <= i + 3; j++) {
        let d = 0;
        for (let c = 0; c < 3; c++) d += p.q[i * 3 + c] * p.k[j * 3 + c];
        z += Math.exp(0.9 * d + lam[i + 3] - lam[j]);
      }
      expect(lse[i]).toBeCloseTo(Math.log(z), 12);
    }
  });
});
