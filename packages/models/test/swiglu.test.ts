import { gradcheck, valueAndGrad } from '@foxgate/autograd';
import { dispose, memoryStats, rngKey, type Tensor, tidy, zeros } from '@foxgate/tensor';
import { describe, expect, it } from 'vitest';
import { initSwiGLU, mlpHidden, type SwiGLUParams, swiglu } from '../src/index.js';
import { f64, maxDiff, stats, throwsNaming, values, wsum } from './util.js';

const silu = (z: number) => z / (1 + Math.exp(-z));

/** x [rows, in] · Wᵀ for W row-major [out, in] (PyTorch layout), plus an optional bias, in plain JS. */
function refLinear(x: number[], w: number[], rows: number, inDim: number, outDim: number, b?: number[]): number[] {
  const out: number[] = [];
  for (let r = 0; r < rows; r++)
    for (let o = 0; o < outDim; o++) {
      let s = b ? b[o] : 0;
      for (let i = 0; i < inDim; i++) s += x[r * inDim + i] * w[o * inDim + i];
      out.push(s);
    }
  return out;
}

/**
 * down(silu(gate) ⊙ up) in plain JS for x [rows, dim], gate_proj [2·hidden, dim] (rows
 * 0..hidden the gate, the rest up) and down_proj [dim, hidden].
 */
function refSwiglu(
  x: number[],
  wgu: number[],
  wd: number[],
  rows: number,
  dim: number,
  hidden: number,
  bgu?: number[],
  bd?: number[],
): number[] {
  const gu = refLinear(x, wgu, rows, dim, 2 * hidden, bgu);
  const h: number[] = [];
  for (let r = 0; r < rows; r++) for (let j = 0; j < hidden; j++) h.push(silu(gu[r * 2 * hidden + j]) * gu[r * 2 * hidden + hidden + j]);
  return refLinear(h, wd, rows, hidden, dim, bd);
}

describe('swiglu: down_proj(silu(gate) ⊙ up) with [gate, up] = x·gate_projᵀ', () => {
  it('matches plain loops for x [2,3,4], hidden 6 (float64)', () => {
    const [B, T, D, H] = [2, 3, 4, 6];
    const [xs, wgu, wd] = [values(B * T * D, 1), values(2 * H * D, 2), values(D * H, 4)];
    const p: SwiGLUParams = { gate_proj: { weight: f64(wgu, [2 * H, D]) }, down_proj: { weight: f64(wd, [D, H]) } };
    const x = f64(xs, [B, T, D]);
    const y = swiglu(p, x);
    expect(y.shape).toEqual([B, T, D]);
    expect(y.dtype).toBe('float64');
    expect(maxDiff(y.dataSync(), refSwiglu(xs, wgu, wd, B * T, D, H))).toBeLessThan(1e-13);
    dispose([p, x, y]);
  });

  it('a tiny case by hand: dim 1, hidden 1; the first half of gate_proj is the gate', () => {
    // x = 2, gate_proj = [[1],[3]] (gate 1, up 3), down_proj = [[0.5]]: silu(2)·6·0.5 = 3·2/(1+e⁻²)
    const p: SwiGLUParams = { gate_proj: { weight: f64([1, 3], [2, 1]) }, down_proj: { weight: f64([0.5], [1, 1]) } };
    const x = f64([2], [1, 1]);
    const y = swiglu(p, x);
    expect(y.itemSync()).toBeCloseTo(6 / (1 + Math.exp(-2)), 14);
    // the halves swapped: silu(6)·2·0.5, a different number
    const q: SwiGLUParams = { gate_proj: { weight: f64([3, 1], [2, 1]) }, down_proj: { weight: f64([0.5], [1, 1]) } };
    const z = swiglu(q, x);
    expect(z.itemSync()).toBeCloseTo(6 / (1 + Math.exp(-6)), 14);
    dispose([p, q, x, y, z]);
  });

  it('adds biases when the projections have them', () => {
    const [D, H] = [3, 2];
    const [xs, wgu, wd, bgu, bd] = [values(D, 1), values(2 * H * D, 2), values(D * H, 4), values(2 * H, 5), values(D, 7)];
    const p: SwiGLUParams = {
      gate_proj: { weight: f64(wgu, [2 * H, D]), bias: f64(bgu, [2 * H]) },
      down_proj: { weight: f64(wd, [D, H]), bias: f64(bd, [D]) },
    };
    const x = f64(xs, [D]);
    const y = swiglu(p, x);
    expect(y.shape).toEqual([D]);
    expect(maxDiff(y.dataSync(), refSwiglu(xs, wgu, wd, 1, D, H, bgu, bd))).toBeLessThan(1e-14);
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

describe('mlpHidden: 256·ceil(int(dim·r·2/3)/256)', () => {
  it('by hand for the LLaMA (r = 4) and Pro (r = 3.5) blocks', () => {
    expect(mlpHidden(768, 4)).toBe(2048); // 2048 exactly
    expect(mlpHidden(64, 4)).toBe(256); // int(170.67) = 170 → 256
    expect(mlpHidden(1024, 4)).toBe(2816); // int(2730.67) = 2730 → 11·256
    expect(mlpHidden(1024, 3.5)).toBe(2560); // int(2389.33) = 2389 → 10·256
    expect(mlpHidden(1536, 3.5)).toBe(3584); // 3584 exactly
  });

  it('is the smallest multiple of 256 at or above int(dim·r·2/3)', () => {
    for (const r of [4, 3.5])
      for (let dim = 8; dim <= 2048; dim += 40) {
        const h = mlpHidden(dim, r);
        const raw = Math.trunc((dim * r * 2) / 3);
        expect(h % 256).toBe(0);
        expect(h).toBeGreaterThanOrEqual(raw);
        expect(h - 256).toBeLessThan(raw);
      }
  });
});

describe('initSwiGLU', () => {
  it('gate_proj [2·hidden, dim] and down_proj [dim, hidden], bias-free, weights ~ N(0, 0.02²)', () => {
    const p = initSwiGLU(rngKey(9), 256, 128, { backend: 'cpu' });
    expect(p.gate_proj.weight.shape).toEqual([256, 256]);
    expect(p.down_proj.weight.shape).toEqual([256, 128]);
    expect(p.gate_proj.bias).toBeUndefined();
    expect(p.down_proj.bias).toBeUndefined();
    expect(p.gate_proj.weight.dtype).toBe('float32');
    for (const w of [p.gate_proj.weight, p.down_proj.weight]) {
      const n = w.size;
      const { mean, std } = stats(w.dataSync());
      expect(Math.abs(mean)).toBeLessThan((5 * 0.02) / Math.sqrt(n));
      expect(Math.abs(std - 0.02)).toBeLessThan((5 * 0.02) / Math.sqrt(2 * n));
    }
    // the gate and up halves are independent draws, and so are gate_proj and down_proj
    const gu = p.gate_proj.weight.dataSync();
    const half = 128 * 256;
    expect(gu.slice(0, half).some((v, i) => v !== gu[half + i])).toBe(true);
    const d = p.down_proj.weight.dataSync();
    expect(d.some((v, i) => v !== gu[i])).toBe(true);
    dispose(p);
  });

  it('honours std and dtype; the same key gives the same tree, another key another', () => {
    const a = initSwiGLU(rngKey(2), 8, 24, { backend: 'cpu' });
    const b = initSwiGLU(rngKey(2), 8, 24, { backend: 'cpu' });
    const c = initSwiGLU(rngKey(3), 8, 24, { backend: 'cpu' });
    expect([a.gate_proj.weight.shape, a.down_proj.weight.shape]).toEqual([
      [48, 8],
      [8, 24],
    ]);
    for (const k of ['gate_proj', 'down_proj'] as const) {
      expect([...a[k].weight.dataSync()]).toEqual([...b[k].weight.dataSync()]);
      expect([...a[k].weight.dataSync()]).not.toEqual([...c[k].weight.dataSync()]);
    }
    const w = initSwiGLU(rngKey(4), 256, 256, { std: 0.5, dtype: 'float64', backend: 'cpu' });
    expect(w.down_proj.weight.dtype).toBe('float64');
    expect(Math.abs(stats(w.down_proj.weight.dataSync()).std - 0.5)).toBeLessThan((5 * 0.5) / Math.sqrt(2 * 256 * 256));
    dispose([a, b, c, w]);
  });
});

describe('swiglu gradients', () => {
  it('passes gradcheck in gate_proj, down_proj (weights and biases) and x (float64)', () => {
    const [D, H] = [4, 3];
    const wgu = f64(values(2 * H * D, 30), [2 * H, D]);
    const wd = f64(values(D * H, 31), [D, H]);
    const bgu = f64(values(2 * H, 32), [2 * H]);
    const bd = f64(values(D, 33), [D]);
    const x = f64(values(2 * 3 * D, 11), [2, 3, D]);
    const report = gradcheck(
      (a, b, c, d, xx) => wsum(swiglu({ gate_proj: { weight: a, bias: b }, down_proj: { weight: c, bias: d } }, xx)),
      [wgu, bgu, wd, bd, x],
    );
    expect(report.ok).toBe(true);
    expect(report.inputs.map((r) => r.checked)).toEqual([true, true, true, true, true]);
    dispose([wgu, wd, bgu, bd, x]);
  });

  it('valueAndGrad over SwiGLUParams: grads mirror the tree, nothing else leaks', () => {
    const p = initSwiGLU(rngKey(5), 4, 8, { dtype: 'float64', backend: 'cpu' });
    const x = f64(values(12, 3), [3, 4]);
    const before = memoryStats().backends.cpu.tensors;
    const { value, grads } = valueAndGrad((q: SwiGLUParams, xx: Tensor) => wsum(swiglu(q, xx)))(p, x);
    expect(Object.keys(grads).sort()).toEqual(['down_proj', 'gate_proj']);
    expect(grads.gate_proj.weight.shape).toEqual([16, 4]);
    expect(grads.down_proj.weight.shape).toEqual([4, 8]);
    expect(memoryStats().backends.cpu.tensors).toBe(before + 3); // value + 2 gradients
    dispose([p, x, value, grads]);
  });
});

describe('initSwiGLU and swiglu errors name the function and the shapes', () => {
  const p = tidy(() => initSwiGLU(rngKey(0), 4, 8, { backend: 'cpu' }));

  it("x's last dim ≠ dim", () => {
    const x = zeros([2, 5], { backend: 'cpu' });
    expect(throwsNaming(() => swiglu(p, x))).toBe('swiglu: x [2,5] has last dim 5 but p.gate_proj.weight [16,4] expects 4');
    x.dispose();
  });

  it('inconsistent projections', () => {
    const x = zeros([2, 4], { backend: 'cpu' });
    const odd = zeros([7, 4], { backend: 'cpu' });
    expect(throwsNaming(() => swiglu({ ...p, gate_proj: { weight: odd } }, x))).toBe(
      'swiglu: p.gate_proj.weight [7,4] must have an even first dim (gate and up halves)',
    );
    const badDown = zeros([3, 8], { backend: 'cpu' });
    expect(throwsNaming(() => swiglu({ ...p, down_proj: { weight: badDown } }, x))).toBe(
      'swiglu: p.down_proj.weight must be [4,8] for p.gate_proj.weight [16,4], got [3,8]',
    );
    const d64 = zeros([4, 8], { dtype: 'float64', backend: 'cpu' });
    expect(throwsNaming(() => swiglu({ ...p, down_proj: { weight: d64 } }, x))).toBe(
      'swiglu: dtypes differ: x float32[2,4] and p.down_proj.weight float64[4,8]',
    );
    const badBias = zeros([3], { backend: 'cpu' });
    expect(throwsNaming(() => swiglu({ ...p, down_proj: { weight: p.down_proj.weight, bias: badBias } }, x))).toBe(
      'swiglu: p.down_proj.bias must be [4] for p.down_proj.weight [4,8], got [3]',
    );
    throwsNaming(
      () => swiglu({ gate_proj: p.gate_proj } as SwiGLUParams, x),
      /^swiglu: p.down_proj must be \{weight, bias\?\}, got undefined$/,
    );
    throwsNaming(() => swiglu(null as unknown as SwiGLUParams, x), /^swiglu: p must be \{gate_proj, down_proj\}, got null$/);
    dispose([x, odd, badDown, d64, badBias]);
  });

  it('dims that are not positive integers', () => {
    expect(throwsNaming(() => initSwiGLU(rngKey(0), 4, 0))).toBe('initSwiGLU: hidden must be a positive integer, got 0');
    throwsNaming(() => initSwiGLU(rngKey(0), 1.5, 8), /^initSwiGLU: dim must be a positive integer, got 1.5$/);
  });
});
