import { gradcheck, valueAndGrad } from '@foxgate/autograd';
import { dispose, memoryStats, rngKey, type Tensor, tidy, zeros } from '@foxgate/tensor';
import { describe, expect, it } from 'vitest';
import { initSwiGLU, type SwiGLUParams, swiglu } from '../src/index.js';
import { f64, maxDiff, refMatmul, stats, throwsNaming, values, wsum } from './util.js';

const silu = (z: number) => z / (1 + Math.exp(-z));

/** down(silu(x·Wg) ⊙ (x·Wu)) in plain JS, x [rows, dim]. */
function refSwiglu(x: number[], wg: number[], wu: number[], wd: number[], rows: number, dim: number, hidden: number): number[] {
  const g = refMatmul(x, wg, rows, dim, hidden);
  const u = refMatmul(x, wu, rows, dim, hidden);
  const h = g.map((v, i) => silu(v) * u[i]);
  return refMatmul(h, wd, rows, hidden, dim);
}

describe('swiglu: down(silu(x·W_gate) ⊙ (x·W_up))', () => {
  it('matches plain loops for x [2,3,4], hidden 6 (float64)', () => {
    const [B, T, D, H] = [2, 3, 4, 6];
    const [xs, wg, wu, wd] = [values(B * T * D, 1), values(D * H, 2), values(D * H, 3), values(H * D, 4)];
    const p: SwiGLUParams = { gate: { w: f64(wg, [D, H]) }, up: { w: f64(wu, [D, H]) }, down: { w: f64(wd, [H, D]) } };
    const x = f64(xs, [B, T, D]);
    const y = swiglu(p, x);
    expect(y.shape).toEqual([B, T, D]);
    expect(maxDiff(y.dataSync(), refSwiglu(xs, wg, wu, wd, B * T, D, H))).toBeLessThan(1e-13);
    dispose([p, x, y]);
  });

  it('a tiny case by hand: dim 1, hidden 1', () => {
    // x = 2, Wg = 1, Wu = 3, Wd = 0.5: silu(2)·6·0.5 = 3·2/(1+e⁻²)
    const p: SwiGLUParams = { gate: { w: f64([1], [1, 1]) }, up: { w: f64([3], [1, 1]) }, down: { w: f64([0.5], [1, 1]) } };
    const x = f64([2], [1, 1]);
    const y = swiglu(p, x);
    expect(y.itemSync()).toBeCloseTo(6 / (1 + Math.exp(-2)), 14);
    dispose([p, x, y]);
  });

  it('adds biases when the projections have them', () => {
    const [D, H] = [3, 2];
    const [xs, wg, wu, wd, bg, bu, bd] = [
      values(D, 1),
      values(D * H, 2),
      values(D * H, 3),
      values(H * D, 4),
      values(H, 5),
      values(H, 6),
      values(D, 7),
    ];
    const p: SwiGLUParams = {
      gate: { w: f64(wg, [D, H]), b: f64(bg, [H]) },
      up: { w: f64(wu, [D, H]), b: f64(bu, [H]) },
      down: { w: f64(wd, [H, D]), b: f64(bd, [D]) },
    };
    const x = f64(xs, [D]);
    const y = swiglu(p, x);
    const g = refMatmul(xs, wg, 1, D, H).map((v, i) => v + bg[i]);
    const u = refMatmul(xs, wu, 1, D, H).map((v, i) => v + bu[i]);
    const expected = refMatmul(
      g.map((v, i) => silu(v) * u[i]),
      wd,
      1,
      H,
      D,
    ).map((v, i) => v + bd[i]);
    expect(y.shape).toEqual([D]);
    expect(maxDiff(y.dataSync(), expected)).toBeLessThan(1e-14);
    dispose([p, x, y]);
  });

  it('frees its intermediates: only the output stays alive', () => {
    const p = initSwiGLU(rngKey(1), 8, 16, { dtype: 'float64', backend: 'cpu' });
    const x = f64(values(16, 2), [2, 8]);
    const before = memoryStats().backends.cpu.tensors;
    const y = swiglu(p, x);
    expect(memoryStats().backends.cpu.tensors).toBe(before + 1);
    dispose([p, x, y]);
  });
});

describe('initSwiGLU', () => {
  it('three independent bias-free projections with std 1/√fanIn', () => {
    const p = initSwiGLU(rngKey(9), 256, 256, { backend: 'cpu' });
    expect(p.gate.w.shape).toEqual([256, 256]);
    expect(p.gate.b).toBeUndefined();
    const n = 256 * 256;
    for (const w of [p.gate.w, p.up.w, p.down.w]) {
      const { mean, std } = stats(w.dataSync());
      expect(Math.abs(mean)).toBeLessThan(5 / 16 / Math.sqrt(n));
      expect(Math.abs(std - 1 / 16)).toBeLessThan(5 / 16 / Math.sqrt(2 * n));
    }
    const [g, u] = [p.gate.w.dataSync(), p.up.w.dataSync()];
    expect(g.some((v, i) => v !== u[i])).toBe(true);
    dispose(p);
  });

  it('shapes [dim,hidden], [dim,hidden], [hidden,dim]; the same key gives the same tree', () => {
    const a = initSwiGLU(rngKey(2), 8, 24, { backend: 'cpu' });
    const b = initSwiGLU(rngKey(2), 8, 24, { backend: 'cpu' });
    const c = initSwiGLU(rngKey(3), 8, 24, { backend: 'cpu' });
    expect([a.gate.w.shape, a.up.w.shape, a.down.w.shape]).toEqual([
      [8, 24],
      [8, 24],
      [24, 8],
    ]);
    // down's std is 1/√hidden
    expect(Math.abs(stats(a.down.w.dataSync()).std - 1 / Math.sqrt(24))).toBeLessThan(0.03);
    for (const k of ['gate', 'up', 'down'] as const) {
      expect([...a[k].w.dataSync()]).toEqual([...b[k].w.dataSync()]);
      expect([...a[k].w.dataSync()]).not.toEqual([...c[k].w.dataSync()]);
    }
    dispose([a, b, c]);
  });
});

describe('swiglu gradients', () => {
  it('passes gradcheck in every weight and in x (float64)', () => {
    const p = initSwiGLU(rngKey(4), 4, 6, { dtype: 'float64', backend: 'cpu' });
    const x = f64(values(2 * 3 * 4, 11), [2, 3, 4]);
    const report = gradcheck(
      (wg, wu, wd, xx) => wsum(swiglu({ gate: { w: wg }, up: { w: wu }, down: { w: wd } }, xx)),
      [p.gate.w, p.up.w, p.down.w, x],
    );
    expect(report.ok).toBe(true);
    expect(report.inputs.every((r) => r.checked)).toBe(true);
    dispose([p, x]);
  });

  it('valueAndGrad over SwiGLUParams: grads mirror the tree, nothing else leaks', () => {
    const p = initSwiGLU(rngKey(5), 4, 8, { dtype: 'float64', backend: 'cpu' });
    const x = f64(values(12, 3), [3, 4]);
    const before = memoryStats().backends.cpu.tensors;
    const { value, grads } = valueAndGrad((q: SwiGLUParams, xx: Tensor) => wsum(swiglu(q, xx)))(p, x);
    expect(Object.keys(grads).sort()).toEqual(['down', 'gate', 'up']);
    expect(grads.gate.w.shape).toEqual([4, 8]);
    expect(grads.down.w.shape).toEqual([8, 4]);
    expect(memoryStats().backends.cpu.tensors).toBe(before + 4); // value + 3 gradients
    dispose([p, x, value, grads]);
  });
});

describe('initSwiGLU and swiglu errors name the function and the shapes', () => {
  const p = tidy(() => initSwiGLU(rngKey(0), 4, 8, { backend: 'cpu' }));

  it("x's last dim ≠ dim", () => {
    const x = zeros([2, 5], { backend: 'cpu' });
    expect(throwsNaming(() => swiglu(p, x))).toBe('swiglu: x [2,5] has last dim 5 but p.gate.w [4,8] expects 4');
    x.dispose();
  });

  it('inconsistent projections', () => {
    const x = zeros([2, 4], { backend: 'cpu' });
    const bad = zeros([4, 7], { backend: 'cpu' });
    throwsNaming(() => swiglu({ ...p, up: { w: bad } }, x), /^swiglu: /, 'p.gate.w [4,8]', 'p.up.w [4,7]');
    const badDown = zeros([8, 3], { backend: 'cpu' });
    expect(throwsNaming(() => swiglu({ ...p, down: { w: badDown } }, x))).toBe(
      'swiglu: p.down.w must be [8,4] for p.gate.w [4,8], got [8,3]',
    );
    throwsNaming(() => swiglu({ gate: p.gate, up: p.up } as SwiGLUParams, x), /^swiglu: p.down must be \{w, b\?\}, got undefined$/);
    dispose([x, bad, badDown]);
  });

  it('dims that are not positive integers', () => {
    expect(throwsNaming(() => initSwiGLU(rngKey(0), 4, 0))).toBe('initSwiGLU: hidden must be a positive integer, got 0');
    throwsNaming(() => initSwiGLU(rngKey(0), 1.5, 8), /^initSwiGLU: dim must be a positive integer, got 1.5$/);
  });
});
