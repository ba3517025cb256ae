import { gradcheck } from '@foxgate/autograd';
import { cast, dispose, getBackend, memoryStats, narrow, type Tensor, zeros } from '@foxgate/tensor';
import { describe, expect, it } from 'vitest';
import { ROPE_BASE, rope, ropeTables, ropeTableTensors } from '../src/index.js';
import { f64, maxDiff, throwsNaming, values, wsum } from './util.js';

/**
 * Rotate-half RoPE of x [B,T,H,D] in plain JS, element by element: with half = D/2 and
 * θ(t, i) = (offset + t)·base^(−2i/D), out_i = x_i·cos θ_i − x_{i+half}·sin θ_i for i < half and
 * out_{i+half} = x_{i+half}·cos θ_i + x_i·sin θ_i.
 */
function refRope(x: number[], [B, T, H, D]: number[], base: number, offset = 0): number[] {
  const out = new Array<number>(x.length);
  const half = D / 2;
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++)
      for (let h = 0; h < H; h++) {
        const o = ((b * T + t) * H + h) * D;
        for (let i = 0; i < half; i++) {
          const theta = (offset + t) / base ** ((2 * i) / D);
          const [c, s] = [Math.cos(theta), Math.sin(theta)];
          out[o + i] = x[o + i] * c - x[o + half + i] * s;
          out[o + half + i] = x[o + half + i] * c + x[o + i] * s;
        }
      }
  return out;
}

const shape = [2, 5, 3, 8];
const size = shape.reduce((a, b) => a * b, 1);

describe('ropeTables', () => {
  it('cos/sin of (offset + t)·base^(−2i/D), the first half repeated in the second', () => {
    expect(ROPE_BASE).toBe(500000);
    const { cos, sin } = ropeTables(3, 4, { base: 100, offset: 2 });
    expect(cos.length).toBe(12);
    // angles per row: i = 0 → (2 + t)·1, i = 1 → (2 + t)·100^(−1/2) = (2 + t)/10
    for (let t = 0; t < 3; t++) {
      const a = [2 + t, (2 + t) / 10];
      const wantCos = [Math.cos(a[0]), Math.cos(a[1]), Math.cos(a[0]), Math.cos(a[1])];
      const wantSin = [Math.sin(a[0]), Math.sin(a[1]), Math.sin(a[0]), Math.sin(a[1])];
      expect(maxDiff(cos.slice(t * 4, t * 4 + 4), wantCos)).toBeLessThan(1e-15);
      expect(maxDiff(sin.slice(t * 4, t * 4 + 4), wantSin)).toBeLessThan(1e-15);
    }
  });

  it('defaults: base 500000, offset 0 (row 0 is cos 1, sin 0)', () => {
    const a = ropeTables(4, 6);
    const b = ropeTables(4, 6, { base: 500000, offset: 0 });
    expect([...a.cos]).toEqual([...b.cos]);
    expect([...a.sin]).toEqual([...b.sin]);
    expect([...a.cos.slice(0, 6)]).toEqual([1, 1, 1, 1, 1, 1]);
    expect([...a.sin.slice(0, 6)]).toEqual([0, 0, 0, 0, 0, 0]);
    // the lowest frequency: t · 500000^(−4/6)
    expect(a.sin[3 * 6 + 2]).toBeCloseTo(Math.sin(3 * 500000 ** (-4 / 6)), 15);
  });
});

describe('ropeTableTensors', () => {
  it('the tables of ropeTables in the dtype asked for, the same on every call (host tables reused across calls and keys)', () => {
    const want = ropeTables(5, 4, { base: 100, offset: 3 });
    for (let round = 0; round < 2; round++)
      for (const [T, off] of [
        [5, 3],
        [7, 0],
        [5, 1],
        [9, 2],
        [6, 4],
        [5, 3],
      ]) {
        const t64 = ropeTableTensors(T, 4, { base: 100, offset: off, dtype: 'float64', backend: getBackend('cpu') });
        const t32 = ropeTableTensors(T, 4, { base: 100, offset: off, dtype: 'float32', backend: getBackend('cpu') });
        const ref = ropeTables(T, 4, { base: 100, offset: off });
        expect(t64.cos.shape).toEqual([T, 1, 4]);
        expect([...t64.cos.dataSync()]).toEqual([...ref.cos]);
        expect([...t64.sin.dataSync()]).toEqual([...ref.sin]);
        expect([...t32.sin.dataSync()]).toEqual([...Float32Array.from(ref.sin)]);
        if (T === 5 && off === 3) expect([...t32.cos.dataSync()]).toEqual([...Float32Array.from(want.cos)]);
        dispose([t64.cos, t64.sin, t32.cos, t32.sin]);
      }
  });
});

describe('rope: rotate-half rotary position embedding on [B,T,H,D]', () => {
  const xs = values(size, 1);

  it('matches the rotate-half formula element by element (float64, default base)', () => {
    const x = f64(xs, shape);
    const y = rope(x);
    expect(y.shape).toEqual(shape);
    expect(y.dtype).toBe('float64');
    expect(maxDiff(y.dataSync(), refRope(xs, shape, 500000))).toBeLessThan(1e-14);
    dispose([x, y]);
  });

  it('a hand case: D = 2, t = 1 rotates (x₀, x₁) by 1 radian', () => {
    const x = f64([9, 9, 3, 4], [1, 2, 1, 2]); // row t = 0 stays, row t = 1 rotates
    const y = rope(x, { base: 7 });
    const [c, s] = [Math.cos(1), Math.sin(1)];
    expect(maxDiff(y.dataSync(), [9, 9, 3 * c - 4 * s, 4 * c + 3 * s])).toBeLessThan(1e-15);
    dispose([x, y]);
  });

  it('offset k equals slicing positions k.. out of a longer sequence', () => {
    const x = f64(xs, shape);
    const full = rope(x, { base: 1000 });
    const part = narrow(x, 1, 2, 3);
    const y = rope(part, { base: 1000, offset: 2 });
    const want = narrow(full, 1, 2, 3);
    expect(maxDiff(y.dataSync(), want.dataSync())).toBeLessThan(1e-14);
    expect(maxDiff(y.dataSync(), refRope(Array.from(part.dataSync()), [2, 3, 3, 8], 1000, 2))).toBeLessThan(1e-14);
    // without the offset the slice would be rotated as positions 0..2: different
    const wrong = rope(part, { base: 1000 });
    expect(maxDiff(wrong.dataSync(), want.dataSync())).toBeGreaterThan(1e-2);
    dispose([x, full, part, y, want, wrong]);
  });

  it('the base sets the frequencies: i = 0 turns at 1 rad/step whatever the base, the others follow base^(−2i/D)', () => {
    const x = f64(xs, shape);
    const a = rope(x, { base: 10000 });
    const b = rope(x, { base: 500000 });
    expect(maxDiff(a.dataSync(), refRope(xs, shape, 10000))).toBeLessThan(1e-14);
    const [A, Bd] = [a.dataSync(), b.dataSync()];
    let same0 = 0;
    let diffOther = 0;
    for (let j = 0; j < size; j++) {
      const i = j % 8;
      const t = Math.floor(j / (3 * 8)) % 5;
      if (i === 0 || i === 4) same0 = Math.max(same0, Math.abs(A[j] - Bd[j]));
      else if (t > 0) diffOther = Math.max(diffOther, Math.abs(A[j] - Bd[j]));
    }
    expect(same0).toBeLessThan(1e-15);
    expect(diffOther).toBeGreaterThan(1e-3);
    dispose([x, a, b]);
  });

  it('preserves the norm of each (i, i + D/2) pair, and q·k depends only on the position difference', () => {
    const x = f64(xs, shape);
    const y = rope(x);
    const [X, Y] = [x.dataSync(), y.dataSync()];
    for (let o = 0; o < size; o += 8)
      for (let i = 0; i < 4; i++) {
        const nx = X[o + i] ** 2 + X[o + 4 + i] ** 2;
        const ny = Y[o + i] ** 2 + Y[o + 4 + i] ** 2;
        expect(Math.abs(nx - ny)).toBeLessThan(1e-13);
      }
    // the same q at position m and k at position n, for (m, n) = (3, 1) and (10, 8)
    const q = values(8, 5);
    const k = values(8, 6);
    const dotAt = (m: number, n: number) => {
      const qt = f64(q, [1, 1, 1, 8]);
      const kt = f64(k, [1, 1, 1, 8]);
      const [rq, rk] = [rope(qt, { offset: m, base: 50 }), rope(kt, { offset: n, base: 50 })];
      const [a, b] = [rq.dataSync(), rk.dataSync()];
      dispose([qt, kt, rq, rk]);
      let dot = 0;
      for (let j = 0; j < 8; j++) dot += a[j] * b[j];
      return dot;
    };
    expect(Math.abs(dotAt(3, 1) - dotAt(10, 8))).toBeLessThan(1e-13);
    expect(Math.abs(dotAt(3, 1) - dotAt(3, 2))).toBeGreaterThan(1e-3);
    dispose([x, y]);
  });

  it('float32 in, float32 out, within float32 rounding of the float64 result', () => {
    const x = f64(xs, shape);
    const x32 = cast(x, 'float32');
    const y = rope(x32, { offset: 1000 });
    expect(y.dtype).toBe('float32');
    expect(maxDiff(y.dataSync(), refRope(xs, shape, 500000, 1000))).toBeLessThan(1e-5);
    dispose([x, x32, y]);
  });

  it('only the output stays alive', () => {
    const x = f64(xs, shape);
    const before = memoryStats().backends.cpu.tensors;
    const y = rope(x, { offset: 3 });
    expect(memoryStats().backends.cpu.tensors).toBe(before + 1);
    dispose([x, y]);
  });

  it('passes gradcheck in x (float64), with an offset and a small base', () => {
    const x = f64(values(1 * 3 * 2 * 4, 7), [1, 3, 2, 4]);
    const report = gradcheck((xx) => wsum(rope(xx, { base: 10, offset: 2 })), [x]);
    expect(report.ok).toBe(true);
    expect(report.inputs[0].checked).toBe(true);
    x.dispose();
  });
});

describe('rope errors name the function and the argument', () => {
  it('a rank other than 4, an odd head dim, a bad base or offset, not a tensor', () => {
    const x = zeros([1, 2, 1, 4], { backend: 'cpu' });
    expect(throwsNaming(() => rope(zeros([2, 4], { backend: 'cpu' })))).toBe('rope: x must be [B,T,H,D], got [2,4]');
    expect(throwsNaming(() => rope(zeros([1, 2, 1, 3], { backend: 'cpu' })))).toBe('rope: the head dim must be even, got 3');
    expect(throwsNaming(() => rope(x, { base: 0 }))).toBe('rope: base must be a finite number > 0, got 0');
    throwsNaming(() => rope(x, { base: Number.POSITIVE_INFINITY }), /^rope: base must be a finite number > 0, got Infinity$/);
    expect(throwsNaming(() => rope(x, { offset: -1 }))).toBe('rope: offset must be an integer >= 0, got -1');
    throwsNaming(() => rope(x, { offset: 1.5 }), /^rope: offset .* got 1.5$/);
    throwsNaming(() => rope([1, 2] as unknown as Tensor), /^rope: x must be a Tensor, got an array$/);
    x.dispose();
  });

  it('shared tables (ropeTableTensors) give bit-identical results; wrong tables are one line', () => {
    const x = f64(values(size, 11), shape);
    const tables = ropeTableTensors(5, 8, { base: 10000, offset: 3, dtype: 'float64', backend: x.backend });
    const a = rope(x, { base: 10000, offset: 3 });
    const b = rope(x, { tables });
    expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
    const short = ropeTableTensors(4, 8, { dtype: 'float64', backend: x.backend });
    throwsNaming(() => rope(x, { tables: short }), /^rope: tables\.cos must be float64\[5,1,8\] on x's backend, got float64\[4,1,8\]$/);
    dispose([x, a, b, tables.cos, tables.sin, short.cos, short.sin]);
  });
});
