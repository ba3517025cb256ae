import { describe, expect, it } from 'vitest';
import { UNARY_OPS, type UnaryOp, type View } from '../src/backend.js';
import { CpuBackend } from '../src/backends/cpu/backend.js';
import { hasWasmGemm } from '../src/backends/cpu/matmul.js';
import type { DType, TypedArray } from '../src/dtype.js';
import { FoxgateError } from '../src/errors.js';
import { philoxRandom } from '../src/rng/philox.js';
import { contiguousStrides } from '../src/shape.js';

// Kernels are tested directly through the Backend interface, on hand-made strided views.
const cpu = new CpuBackend();

function view(data: TypedArray | number[], dtype: DType, shape: number[], strides?: number[], offset = 0): View {
  const arr = Array.isArray(data) ? Float64Array.from(data) : data;
  return { storage: cpu.upload(arr, dtype), dtype, shape, strides: strides ?? contiguousStrides(shape), offset };
}
const read = (s: ReturnType<CpuBackend['fill']>, dtype: DType = 'float64'): number[] => Array.from(cpu.readSync(s, dtype, 1e9));

/** Deterministic pseudo-random numbers in [-1, 1). */
function rand(n: number, seed = 1): Float64Array {
  const out = new Float64Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

describe('cpu backend: memory', () => {
  it('uploads copies, reads copies and counts storages', () => {
    const b = new CpuBackend();
    const src = new Float32Array([1, 2, 3]);
    const s = b.upload(src, 'float32');
    src[0] = 9;
    const r = b.readSync(s, 'float32', 2);
    expect(r).toBeInstanceOf(Float32Array);
    expect(Array.from(r)).toEqual([1, 2]);
    r[1] = 7;
    expect(Array.from(b.readSync(s, 'float32', 3))).toEqual([1, 2, 3]);
    const t = b.fill(5, 1, 'float64');
    expect(b.memory()).toEqual({ bytesInUse: 12 + 40, storages: 2, peakBytes: 52 });
    b.free(s);
    expect(b.memory()).toEqual({ bytesInUse: 40, storages: 1, peakBytes: 52 });
    b.free(t);
    expect(b.memory()).toEqual({ bytesInUse: 0, storages: 0, peakBytes: 52 });
  });

  it('converts uploads to the dtype and reads asynchronously', async () => {
    const b = new CpuBackend();
    expect(Array.from(b.readSync(b.upload(new Float64Array([0, 2, -0.5, Number.NaN]), 'bool'), 'bool', 4))).toEqual([0, 1, 1, 1]);
    expect(Array.from(b.readSync(b.upload(new Float64Array([-1, 2.5]), 'int32'), 'int32', 2))).toEqual([-1, 2]);
    expect(Array.from(await b.read(b.fill(3, 0.1, 'float32'), 'float32', 3))).toEqual([0.1, 0.1, 0.1].map(Math.fround));
    expect(Array.from(b.readSync(b.fill(2, 3, 'bool'), 'bool', 2))).toEqual([1, 1]);
    await b.sync();
  });

  it('copies strided views with an offset to contiguous storage', () => {
    // storage 0..23 seen as x[i,j] = 1 + 8i + 3j, shape [3,2], offset 1 (a transposed slice).
    const x = view(
      Array.from({ length: 24 }, (_, i) => i),
      'float32',
      [3, 2],
      [8, 3],
      1,
    );
    expect(read(cpu.copy(x), 'float32')).toEqual([1, 4, 9, 12, 17, 20]);
    const scalar = view([4, 5], 'int32', [], [], 1);
    expect(read(cpu.copy(scalar), 'int32')).toEqual([5]);
    expect(read(cpu.copy(view([], 'float32', [0, 3])), 'float32')).toEqual([]);
  });
});

describe('cpu backend: elementwise', () => {
  it('binary ops on strided and broadcast (stride 0) views', () => {
    // a = [[1,2,3],[4,5,6]] seen transposed from a [3,2] storage; b = [10,20,30] broadcast over rows.
    const a = view([1, 4, 2, 5, 3, 6], 'float32', [2, 3], [1, 2]);
    const b = view([10, 20, 30], 'float32', [2, 3], [0, 1]);
    expect(read(cpu.binary('add', a, b, [2, 3], 'float32'))).toEqual([11, 22, 33, 14, 25, 36]);
    expect(read(cpu.binary('sub', a, b, [2, 3], 'float32'))).toEqual([-9, -18, -27, -6, -15, -24]);
    expect(read(cpu.binary('mul', a, b, [2, 3], 'float32'))).toEqual([10, 40, 90, 40, 100, 180]);
    expect(read(cpu.binary('div', a, b, [2, 3], 'float32'))).toEqual([0.1, 0.1, 0.1, 0.4, 0.25, 0.2].map(Math.fround));
    // scalar broadcast: all strides 0
    const two = view([2], 'float64', [2, 3], [0, 0]);
    const a64 = view([1, 4, 2, 5, 3, 6], 'float64', [2, 3], [1, 2]);
    expect(read(cpu.binary('pow', a64, two, [2, 3], 'float64'))).toEqual([1, 4, 9, 16, 25, 36]);
    expect(read(cpu.binary('gt', a64, view([3], 'float64', [2, 3], [0, 0]), [2, 3], 'bool'), 'bool')).toEqual([0, 0, 0, 1, 1, 1]);
  });

  it('comparisons give bool and maximum/minimum propagate NaN', () => {
    const N = Number.NaN;
    const a = view([1, 2, N, 3, -0], 'float64', [5]);
    const b = view([2, 2, 1, N, 0], 'float64', [5]);
    const cmp = (op: 'lt' | 'le' | 'gt' | 'ge' | 'eq' | 'ne') => read(cpu.binary(op, a, b, [5], 'bool'), 'bool');
    expect(cmp('lt')).toEqual([1, 0, 0, 0, 0]);
    expect(cmp('le')).toEqual([1, 1, 0, 0, 1]);
    expect(cmp('gt')).toEqual([0, 0, 0, 0, 0]);
    expect(cmp('ge')).toEqual([0, 1, 0, 0, 1]);
    expect(cmp('eq')).toEqual([0, 1, 0, 0, 1]);
    expect(cmp('ne')).toEqual([1, 0, 1, 1, 0]);
    expect(read(cpu.binary('maximum', a, b, [5], 'float64'))).toEqual([2, 2, N, N, 0]);
    expect(read(cpu.binary('minimum', a, b, [5], 'float64'))).toEqual([1, 2, N, N, -0]);
  });

  it('integer arithmetic wraps like int32/uint32 and int division truncates toward zero', () => {
    const a = view([7, -7, 7, -7, 2147483647, -2147483648, 65537], 'int32', [7]);
    const b = view([2, 2, -2, -2, 1, 1, 65537], 'int32', [7]);
    expect(read(cpu.binary('div', a, b, [7], 'int32'), 'int32')).toEqual([3, -3, -3, 3, 2147483647, -2147483648, 1]);
    expect(read(cpu.binary('add', a, b, [7], 'int32'), 'int32')).toEqual([9, -5, 5, -9, -2147483648, -2147483647, 131074]);
    expect(read(cpu.binary('mul', a, b, [7], 'int32'), 'int32')).toEqual([
      14,
      -14,
      -14,
      14,
      2147483647,
      -2147483648,
      Math.imul(65537, 65537),
    ]);
    const u = view([1, 0, 4294967295], 'uint32', [3]);
    const v = view([2, 1, 2], 'uint32', [3]);
    expect(read(cpu.binary('sub', u, v, [3], 'uint32'), 'uint32')).toEqual([4294967295, 4294967295, 4294967293]);
    expect(read(cpu.binary('mul', u, v, [3], 'uint32'), 'uint32')).toEqual([2, 0, 4294967294]);
    expect(read(cpu.binary('div', u, v, [3], 'uint32'), 'uint32')).toEqual([0, 0, 2147483647]);
  });

  it('bool logic: and, or, not, eq', () => {
    const a = view([0, 0, 1, 1], 'bool', [4]);
    const b = view([0, 1, 0, 1], 'bool', [4]);
    expect(read(cpu.binary('and', a, b, [4], 'bool'), 'bool')).toEqual([0, 0, 0, 1]);
    expect(read(cpu.binary('or', a, b, [4], 'bool'), 'bool')).toEqual([0, 1, 1, 1]);
    expect(read(cpu.binary('eq', a, b, [4], 'bool'), 'bool')).toEqual([1, 0, 0, 1]);
    // x = [[s0, s2], [s1, s3]] = [[0, 0], [1, 0]]
    expect(read(cpu.unary('not', view([0, 1, 0, 0], 'bool', [2, 2], [1, 2]), 'bool'), 'bool')).toEqual([1, 1, 0, 1]);
  });

  const ref: Record<UnaryOp, (x: number) => number> = {
    neg: (x) => -x,
    abs: Math.abs,
    sign: (x) => (x === 0 ? 0 : Math.sign(x)),
    exp: Math.exp,
    log: Math.log,
    log1p: Math.log1p,
    sqrt: Math.sqrt,
    rsqrt: (x) => 1 / Math.sqrt(x),
    sin: Math.sin,
    cos: Math.cos,
    tanh: Math.tanh,
    sigmoid: (x) => 1 / (1 + Math.exp(-x)),
    logsigmoid: (x) => -Math.log1p(Math.exp(-x)),
    relu: (x) => (x + Math.abs(x)) / 2,
    silu: (x) => x / (1 + Math.exp(-x)),
    floor: Math.floor,
    not: (x) => (x === 0 ? 1 : 0),
  };

  it('every float unary op matches Math.* in float64 (strided input)', () => {
    const vals = [-3.5, -1, -0.25, 0, 0.3, 1, 2.75, 10, -20];
    const n = vals.length;
    // the values sit at the odd positions of the storage: a view of stride 2, offset 1
    const store = new Float64Array(2 * n).fill(99);
    vals.forEach((v, i) => {
      store[2 * i + 1] = v;
    });
    const x = view(store, 'float64', [n], [2], 1);
    for (const op of UNARY_OPS) {
      if (op === 'not') continue;
      const got = read(cpu.unary(op, x, 'float64'));
      expect(got.length).toBe(n);
      vals.forEach((v, i) => {
        const want = ref[op](v);
        if (Number.isNaN(want)) expect(got[i], `${op}(${v})`).toBeNaN();
        else expect(got[i], `${op}(${v})`).toBeCloseTo(want, 12);
      });
    }
  });

  it('float32 unary results are rounded to float32', () => {
    const vals = [0.1, 0.7, 1.3, 2.9];
    const x = view(vals, 'float32', [4]);
    const got = read(cpu.unary('exp', x, 'float32'), 'float32');
    expect(got).toEqual(vals.map((v) => Math.fround(Math.exp(Math.fround(v)))));
  });

  it('sigmoid, logsigmoid and silu are stable for large |x|; sign(±0) = 0', () => {
    const x = view([-800, -40, 40, 800, -0, 0, Number.NaN], 'float64', [7]);
    const sig = read(cpu.unary('sigmoid', x, 'float64'));
    expect(sig.slice(0, 4)).toEqual([0, Math.exp(-40) / (1 + Math.exp(-40)), 1 / (1 + Math.exp(-40)), 1]);
    const ls = read(cpu.unary('logsigmoid', x, 'float64'));
    expect(ls[0]).toBe(-800);
    expect(ls[1]).toBeCloseTo(-40, 12);
    expect(ls[2]).toBeCloseTo(-Math.exp(-40), 30);
    expect(ls[3]).toBe(0);
    expect(ls[5]).toBeCloseTo(-Math.LN2, 15);
    const silu = read(cpu.unary('silu', x, 'float64'));
    expect(silu[0]).toBe(-0);
    expect(silu[3]).toBe(800);
    const sg = read(cpu.unary('sign', x, 'float64'));
    expect(Object.is(sg[4], 0) && Object.is(sg[5], 0)).toBe(true);
    expect(sg[6]).toBeNaN();
    expect(read(cpu.unary('relu', x, 'float64')).slice(0, 6)).toEqual([0, 0, 40, 800, 0, 0]);
  });

  it('integer unary ops wrap', () => {
    const x = view([-2147483648, -5, 0, 7], 'int32', [4]);
    expect(read(cpu.unary('neg', x, 'int32'), 'int32')).toEqual([-2147483648, 5, 0, -7]);
    expect(read(cpu.unary('abs', x, 'int32'), 'int32')).toEqual([-2147483648, 5, 0, 7]);
    expect(read(cpu.unary('sign', x, 'int32'), 'int32')).toEqual([-1, -1, 0, 1]);
  });

  it('where selects over broadcast views', () => {
    const c = view([1, 0, 1], 'bool', [2, 3], [0, 1]);
    const a = view([1, 2], 'float32', [2, 3], [1, 0]);
    const b = view([-1, -2, -3, -4, -5, -6], 'float32', [2, 3]);
    expect(read(cpu.where(c, a, b, [2, 3]), 'float32')).toEqual([1, -2, 1, 2, -5, 2]);
  });

  it('cast corners', () => {
    const f = view([-1.7, 2.9, Number.NaN, 1e10, -1e10, -0.5, 0, Number.POSITIVE_INFINITY], 'float64', [8]);
    expect(read(cpu.cast(f, 'int32'), 'int32')).toEqual([-1, 2, 0, 2147483647, -2147483648, 0, 0, 2147483647]);
    expect(read(cpu.cast(f, 'uint32'), 'uint32')).toEqual([0, 2, 0, 4294967295, 0, 0, 0, 4294967295]);
    expect(read(cpu.cast(f, 'bool'), 'bool')).toEqual([1, 1, 1, 1, 1, 1, 0, 1]);
    expect(read(cpu.cast(view([-0, 0.25], 'float32', [2]), 'bool'), 'bool')).toEqual([0, 1]);
    expect(read(cpu.cast(view([1, 0, 1], 'bool', [3]), 'float32'), 'float32')).toEqual([1, 0, 1]);
    expect(read(cpu.cast(view([-1, 5], 'int32', [2]), 'uint32'), 'uint32')).toEqual([4294967295, 5]);
    expect(read(cpu.cast(view([4294967295, 5], 'uint32', [2]), 'int32'), 'int32')).toEqual([-1, 5]);
    expect(read(cpu.cast(view([0.1, 16777217], 'float64', [2]), 'float32'), 'float32')).toEqual([Math.fround(0.1), 16777216]);
    expect(read(cpu.cast(view([16777217, -3], 'int32', [2]), 'float64'))).toEqual([16777217, -3]);
    // strided source
    expect(read(cpu.cast(view([1.5, 9, 2.5, 9], 'float32', [2], [2]), 'int32'), 'int32')).toEqual([1, 2]);
  });
});

describe('cpu backend: reductions', () => {
  it('sums 2^20+ float32 values within 1e-5 relative (float64 accumulation)', () => {
    const n = 1_200_001;
    const x = new Float32Array(n);
    let exact = 0;
    for (let i = 0; i < n; i++) {
      x[i] = 0.1 + (i % 7) * 0.013;
      exact += x[i];
    }
    const got = read(cpu.reduce('sum', view(x, 'float32', [n]), [0]), 'float32')[0];
    expect(Math.abs(got - exact) / exact).toBeLessThan(1e-6);
    // A float32 running sum is visibly off on this input, so the test has teeth.
    let naive = Math.fround(0);
    for (let i = 0; i < n; i++) naive = Math.fround(naive + x[i]);
    expect(Math.abs(naive - exact) / exact).toBeGreaterThan(1e-4);
  });

  it('reduces over non-adjacent axes of a permuted view', () => {
    // base [2,3,4,5] contiguous; view = permute(base, [3,1,0,2]) → shape [5,3,2,4]
    const base = rand(120, 3);
    const bs = [60, 20, 5, 1];
    const perm = [3, 1, 0, 2];
    const shape = perm.map((p) => [2, 3, 4, 5][p]);
    const strides = perm.map((p) => bs[p]);
    const x = view(base, 'float64', shape, strides);
    const at = (i: number[]) => base[i.reduce((s, v, k) => s + v * strides[k], 0)];
    // reduce axes [0, 2] → out [3, 4]
    const sum: number[] = [];
    const mx: number[] = [];
    const mn: number[] = [];
    for (let b = 0; b < 3; b++) {
      for (let d = 0; d < 4; d++) {
        let s = 0;
        let hi = Number.NEGATIVE_INFINITY;
        let lo = Number.POSITIVE_INFINITY;
        for (let a = 0; a < 5; a++) {
          for (let c = 0; c < 2; c++) {
            const v = at([a, b, c, d]);
            s += v;
            hi = Math.max(hi, v);
            lo = Math.min(lo, v);
          }
        }
        sum.push(s);
        mx.push(hi);
        mn.push(lo);
      }
    }
    const got = read(cpu.reduce('sum', x, [0, 2]));
    for (let i = 0; i < sum.length; i++) expect(got[i]).toBeCloseTo(sum[i], 12);
    expect(read(cpu.reduce('max', x, [0, 2]))).toEqual(mx);
    expect(read(cpu.reduce('min', x, [0, 2]))).toEqual(mn);
    // all axes, and no axes
    expect(read(cpu.reduce('sum', x, [0, 1, 2, 3]))[0]).toBeCloseTo(
      base.reduce((s, v) => s + v, 0),
      12,
    );
    expect(read(cpu.reduce('sum', x, []))).toEqual(Array.from(read(cpu.copy(x))));
  });

  it('integer and bool sums; empty reductions; NaN in max', () => {
    const i32 = view([2147483647, 1, 5, -5], 'int32', [2, 2]);
    expect(read(cpu.reduce('sum', i32, [1]), 'int32')).toEqual([-2147483648, 0]);
    const u32 = view([4294967295, 2], 'uint32', [2]);
    expect(read(cpu.reduce('sum', u32, [0]), 'uint32')).toEqual([1]);
    const bools = view([1, 0, 1, 1, 1, 0], 'bool', [2, 3]);
    const bs = cpu.reduce('sum', bools, [0]);
    expect(cpu.readSync(bs, 'int32', 3)).toBeInstanceOf(Int32Array);
    expect(read(bs, 'int32')).toEqual([2, 1, 1]);
    const empty = view([], 'float32', [3, 0]);
    expect(read(cpu.reduce('max', empty, [1]), 'float32')).toEqual([-Infinity, -Infinity, -Infinity]);
    expect(read(cpu.reduce('min', empty, [1]), 'float32')).toEqual([Infinity, Infinity, Infinity]);
    expect(read(cpu.reduce('sum', empty, [1]), 'float32')).toEqual([0, 0, 0]);
    const withNaN = view([1, Number.NaN, 3, 4], 'float32', [2, 2]);
    const m = read(cpu.reduce('max', withNaN, [1]), 'float32');
    expect(m[0]).toBeNaN();
    expect(m[1]).toBe(4);
    expect(read(cpu.reduce('min', withNaN, [0]), 'float32')[1]).toBeNaN();
  });

  it('argmax: first maximal index, NaN counts as the max, along a strided axis', () => {
    const x = view([3, 1, 3, 2, 5, 5, Number.NaN, 0, 7, -1, 7, Number.NaN], 'float32', [3, 4]);
    const rows = cpu.reduce('argmax', x, [1]);
    expect(cpu.readSync(rows, 'int32', 3)).toBeInstanceOf(Int32Array);
    expect(read(rows, 'int32')).toEqual([0, 2, 3]);
    // along axis 0 (stride 4)
    expect(read(cpu.reduce('argmax', x, [0]), 'int32')).toEqual([2, 1, 1, 2]);
    const negInf = view([-Infinity, -Infinity], 'float64', [2]);
    expect(read(cpu.reduce('argmax', negInf, [0]), 'int32')).toEqual([0]);
  });
});

function naiveMatmul(a: Float64Array, b: Float64Array, M: number, K: number, N: number): { c: Float64Array; mag: Float64Array } {
  const c = new Float64Array(M * N);
  const mag = new Float64Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      let m = 0;
      for (let k = 0; k < K; k++) {
        s += a[i * K + k] * b[k * N + j];
        m += Math.abs(a[i * K + k] * b[k * N + j]);
      }
      c[i * N + j] = s;
      mag[i * N + j] = m;
    }
  }
  return { c, mag };
}

function expectMatmulClose(got: number[], want: { c: Float64Array; mag: Float64Array }, dtype: DType, at = 0): void {
  const tol = dtype === 'float32' ? 1e-5 : 1e-13;
  for (let i = 0; i < want.c.length; i++) {
    const err = Math.abs(got[at + i] - want.c[i]);
    if (!(err <= tol * (want.mag[i] + 1e-30) + 1e-30)) {
      expect.fail(`element ${i}: got ${got[at + i]}, want ${want.c[i]} (|err| ${err})`);
    }
  }
}

const kernels = hasWasmGemm() ? [true, false] : [false];

describe.each(kernels.map((simd) => ({ simd, b: new CpuBackend({ simd }) })))('cpu backend: matmul (simd=$simd)', ({ b }) => {
  const up = (data: Float64Array, dtype: DType, shape: number[], strides?: number[], offset = 0): View => {
    const arr = dtype === 'float32' ? Float32Array.from(data) : data;
    return { storage: b.upload(arr, dtype), dtype, shape, strides: strides ?? contiguousStrides(shape), offset };
  };
  /** float32 inputs rounded first, so the float64 reference sees exactly what the kernel sees. */
  const round = (x: Float64Array, dtype: DType) => (dtype === 'float32' ? Float64Array.from(Float32Array.from(x)) : x);

  it.each([
    [1, 1, 1],
    [2, 7, 9],
    [3, 1, 1],
    [7, 13, 5],
    [65, 33, 129],
    [100, 300, 270],
    [1030, 3, 9],
  ])('%i×%i @ %i×… matches a float64 triple loop (float32 and float64)', (M, K, N) => {
    for (const dtype of ['float32', 'float64'] as const) {
      const a = round(rand(M * K, M + K), dtype);
      const bb = round(rand(K * N, K + N + 1), dtype);
      const out = b.matmul(up(a, dtype, [M, K]), up(bb, dtype, [K, N]));
      const got = Array.from(b.readSync(out, dtype, M * N));
      expect(got.length).toBe(M * N);
      expectMatmulClose(got, naiveMatmul(a, bb, M, K, N), dtype);
    }
  });

  it.each([37, 1])('transposed operands (views with swapped strides) and offsets, M=%i', (M) => {
    const [K, N] = [70, 19];
    for (const dtype of ['float32', 'float64'] as const) {
      const a = round(rand(M * K, 11), dtype);
      const bb = round(rand(K * N, 12), dtype);
      // aT stored as [K, M] (aT[k,i] = a[i,k]), placed after 3 padding elements
      const aT = new Float64Array(3 + M * K);
      for (let i = 0; i < M; i++) for (let k = 0; k < K; k++) aT[3 + k * M + i] = a[i * K + k];
      const bT = new Float64Array(K * N);
      for (let k = 0; k < K; k++) for (let j = 0; j < N; j++) bT[j * K + k] = bb[k * N + j];
      const av = up(aT, dtype, [M, K], [1, M], 3);
      const bv = up(bT, dtype, [K, N], [1, K]);
      const got = Array.from(b.readSync(b.matmul(av, bv), dtype, M * N));
      expectMatmulClose(got, naiveMatmul(a, bb, M, K, N), dtype);
    }
  });

  it('batched, with a stride-0 (broadcast) batch dim on B and a strided batch on A', () => {
    const [B, M, K, N] = [3, 9, 17, 6];
    for (const dtype of ['float32', 'float64'] as const) {
      const a = round(rand(B * 2 * M * K, 21), dtype); // batch stride 2·M·K: every other matrix
      const bb = round(rand(K * N, 22), dtype);
      const av = up(a, dtype, [B, M, K], [2 * M * K, K, 1]);
      const bv = up(bb, dtype, [B, K, N], [0, N, 1]);
      const got = Array.from(b.readSync(b.matmul(av, bv), dtype, B * M * N));
      for (let t = 0; t < B; t++) {
        const at = a.subarray(2 * t * M * K, (2 * t + 1) * M * K);
        expectMatmulClose(got, naiveMatmul(at, bb, M, K, N), dtype, t * M * N);
      }
    }
  });

  it('rank-4 batch and empty dims', () => {
    const a = up(rand(2 * 2 * 3 * 4, 5), 'float64', [2, 2, 3, 4]);
    const bb = rand(4 * 5, 6);
    const bv = up(bb, 'float64', [2, 2, 4, 5], [0, 0, 5, 1]);
    const got = Array.from(b.readSync(b.matmul(a, bv), 'float64', 60));
    const av = rand(2 * 2 * 3 * 4, 5);
    for (let t = 0; t < 4; t++) {
      expectMatmulClose(got, naiveMatmul(av.subarray(t * 12, t * 12 + 12), bb, 3, 4, 5), 'float64', t * 15);
    }
    expect(
      Array.from(
        b.readSync(b.matmul(up(new Float64Array(0), 'float32', [2, 0]), up(new Float64Array(0), 'float32', [0, 3])), 'float32', 6),
      ),
    ).toEqual([0, 0, 0, 0, 0, 0]);
    expect(b.readSync(b.matmul(up(new Float64Array(0), 'float32', [0, 4]), up(rand(12), 'float32', [4, 3])), 'float32', 0).length).toBe(0);
  });
});

describe('cpu backend: cumsum', () => {
  it('forward and reverse along each axis of a non-contiguous view', () => {
    // x = transpose of a [3,4] storage → shape [4,3], x[i,j] = s[j*4+i]
    const s = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
    const x = view(s, 'float64', [4, 3], [1, 4]);
    // x = [[1,5,9],[2,6,10],[3,7,11],[4,8,12]]
    expect(read(cpu.cumsum(x, 0, false))).toEqual([1, 5, 9, 3, 11, 19, 6, 18, 30, 10, 26, 42]);
    expect(read(cpu.cumsum(x, 0, true))).toEqual([10, 26, 42, 9, 21, 33, 7, 15, 23, 4, 8, 12]);
    expect(read(cpu.cumsum(x, 1, false))).toEqual([1, 6, 15, 2, 8, 18, 3, 10, 21, 4, 12, 24]);
    expect(read(cpu.cumsum(x, 1, true))).toEqual([15, 14, 9, 18, 16, 10, 21, 18, 11, 24, 20, 12]);
    // every other element of a row: [1,3,5,7,9,11]
    const y = view(s, 'int32', [6], [2]);
    expect(read(cpu.cumsum(y, 0, false), 'int32')).toEqual([1, 4, 9, 16, 25, 36]);
    expect(read(cpu.cumsum(y, 0, true), 'int32')).toEqual([36, 35, 32, 27, 20, 11]);
  });

  it('float32 accumulates in doubles and rounds once', () => {
    const n = 100_000;
    const x = new Float32Array(n).fill(0.1);
    const got = cpu.readSync(cpu.cumsum(view(x, 'float32', [n]), 0, false), 'float32', n);
    const f = Math.fround(0.1);
    for (const i of [0, 999, 49_999, n - 1]) expect(got[i]).toBe(Math.fround(f * (i + 1)));
  });
});

describe('cpu backend: take, takeAdjoint, concat', () => {
  it('take gathers along a middle axis with a 2-d index', () => {
    // x [2,3,2] = 0..11 ; index [[2,0],[2,1]] along axis 1 → out [2,2,2,2]
    const x = view(
      Array.from({ length: 12 }, (_, i) => i),
      'float32',
      [2, 3, 2],
    );
    const idx = view([2, 0, 2, 1], 'int32', [2, 2]);
    expect(read(cpu.take(x, idx, 1), 'float32')).toEqual([4, 5, 0, 1, 4, 5, 2, 3, 10, 11, 6, 7, 10, 11, 8, 9]);
    // axis 0 of a transposed view, strided index
    const xt = view(
      Array.from({ length: 6 }, (_, i) => i),
      'int32',
      [3, 2],
      [1, 3],
    ); // [[0,3],[1,4],[2,5]]
    const i2 = view([2, 9, 0, 9], 'int32', [2], [2]);
    expect(read(cpu.take(xt, i2, 0), 'int32')).toEqual([2, 5, 0, 3]);
  });

  it('take rejects out-of-range indices naming the index and the axis size', () => {
    const x = view([1, 2, 3], 'float32', [3]);
    expect(() => cpu.take(x, view([0, 3], 'int32', [2]), 0)).toThrow(FoxgateError);
    expect(() => cpu.take(x, view([0, 3], 'int32', [2]), 0)).toThrow(/take: index 3 .*axis 0 of size 3/);
    expect(() => cpu.take(x, view([-1], 'int32', [1]), 0)).toThrow(/index -1/);
    expect(() => cpu.takeAdjoint([3], view([5], 'int32', [1]), view([1], 'float32', [1]), 0)).toThrow(/takeAdjoint: index 5/);
  });

  it('takeAdjoint accumulates repeated indices', () => {
    const idx = view([1, 1, 0, 1], 'int32', [4]);
    const src = view([1, 2, 3, 4, 5, 6, 7, 8], 'float32', [4, 2]);
    expect(read(cpu.takeAdjoint([3, 2], idx, src, 0), 'float32')).toEqual([5, 6, 1 + 3 + 7, 2 + 4 + 8, 0, 0]);
  });

  it('takeAdjoint is the adjoint of take: <take(x), y> = <x, takeAdjoint(y)>', () => {
    const xs = [3, 5, 4];
    const axis = 1;
    const index = [4, 0, 4, 2, 2, 2];
    const iv = view(index, 'int32', [2, 3]);
    const x = rand(60, 7);
    const xv = view(x, 'float64', xs);
    const outShape = [3, 2, 3, 4];
    const y = rand(72, 8);
    const yv = view(y, 'float64', outShape);
    const tx = cpu.readSync(cpu.take(xv, iv, axis), 'float64', 72);
    const ay = cpu.readSync(cpu.takeAdjoint(xs, iv, yv, axis), 'float64', 60);
    let lhs = 0;
    let rhs = 0;
    for (let i = 0; i < 72; i++) lhs += tx[i] * y[i];
    for (let i = 0; i < 60; i++) rhs += x[i] * ay[i];
    expect(lhs).toBeCloseTo(rhs, 12);
    expect(Math.abs(lhs)).toBeGreaterThan(1e-3);
  });

  it('concat along a middle axis of non-contiguous inputs', () => {
    const a = view([1, 2, 3, 4], 'float32', [2, 1, 2]); // [[[1,2]],[[3,4]]]
    const bt = view([5, 6, 7, 8, 9, 10, 11, 12], 'float32', [2, 2, 2], [1, 4, 2]); // b[i,j,k] = s[i + 4j + 2k]
    const e = view([], 'float32', [2, 0, 2]);
    const out = read(cpu.concat([a, e, bt], 1, [2, 3, 2]), 'float32');
    expect(out).toEqual([1, 2, 5, 7, 9, 11, 3, 4, 6, 8, 10, 12]);
    expect(read(cpu.concat([view([1], 'bool', [1]), view([0, 1], 'bool', [2])], 0, [3]), 'bool')).toEqual([1, 0, 1]);
  });
});

describe('cpu backend: random', () => {
  it('wraps philoxRandom output in a storage', () => {
    for (const [kind, dtype] of [
      ['uniform', 'float32'],
      ['normal', 'float64'],
      ['bits', 'uint32'],
    ] as const) {
      const s = cpu.random(kind, [7, 9], 13, dtype);
      const got = cpu.readSync(s, dtype, 13);
      const want = philoxRandom(kind, [7, 9], 13, dtype);
      expect(got.constructor).toBe(want.constructor);
      expect(Array.from(got)).toEqual(Array.from(want));
      expect(s.byteLength).toBe(want.byteLength);
    }
  });
});
