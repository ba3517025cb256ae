import { afterAll, describe, expect, it } from 'vitest';
import type { Backend } from '../src/backend.js';
import { UNARY_OPS } from '../src/backend.js';
import {
  add,
  arange,
  argmax,
  bernoulli,
  cast,
  concat,
  crossEntropy,
  cumsum,
  div,
  eq,
  expand,
  eye,
  FoxgateError,
  full,
  gt,
  logSoftmax,
  logsumexp,
  matmul,
  max,
  maximum,
  mean,
  memoryStats,
  min,
  mul,
  narrow,
  ones,
  permute,
  randint,
  randomNormal,
  randomUniform,
  reshape,
  rmsNorm,
  slice,
  softmax,
  squeeze,
  stack,
  sub,
  sum,
  type Tensor,
  take,
  takeAdjoint,
  takeAlongAxis,
  tensor,
  tidy,
  transpose,
  trilMask,
  unaryOp,
  unsqueeze,
  variance,
  where,
  zeros,
} from '../src/index.js';
import { testBackends } from './util/backends.js';
import { closeTo } from './util/close.js';
import { destroyTestWebGPU } from './util/webgpu.js';

const backends = await testBackends();
afterAll(() => destroyTestWebGPU());

async function expectClose(t: Tensor, expected: ArrayLike<number>, atol = 1e-5, rtol = 1e-4) {
  const got = Array.from(await t.data());
  const err = closeTo(got, expected, atol, rtol);
  if (err) throw new Error(`${err}\n got ${got.slice(0, 20).join(', ')}\n exp ${Array.from(expected).slice(0, 20).join(', ')}`);
}

/** Deterministic pseudo-random floats in [-1, 1) (a tiny LCG, independent of the library's RNG). */
function lcg(n: number, seed = 1): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return Math.fround((s / 2 ** 32) * 2 - 1);
  });
}

/**
 * Float64 softmax along `axis` of row-major `values` of `shape`: max (NaN wins), exp(x − max),
 * sum, divide — the composed definition, special values included.
 */
function softmaxRef(values: ArrayLike<number>, shape: number[], axis: number): number[] {
  const a = axis < 0 ? axis + shape.length : axis;
  const L = shape[a];
  const inner = shape.slice(a + 1).reduce((n, d) => n * d, 1);
  const outer = shape.slice(0, a).reduce((n, d) => n * d, 1);
  const out = new Array<number>(values.length);
  for (let o = 0; o < outer; o++) {
    for (let t = 0; t < inner; t++) {
      const at = (j: number) => o * L * inner + j * inner + t;
      let m = Number.NEGATIVE_INFINITY;
      for (let j = 0; j < L; j++) {
        const v = values[at(j)];
        if (Number.isNaN(v) || v > m) m = Number.isNaN(m) ? m : v;
      }
      let z = 0;
      for (let j = 0; j < L; j++) z += Math.exp(values[at(j)] - m);
      for (let j = 0; j < L; j++) out[at(j)] = Math.exp(values[at(j)] - m) / z;
    }
  }
  return out;
}

function flat(shape: number[], values: number[], be: Backend): Tensor {
  return tensor(new Float32Array(values), shape, { backend: be });
}

describe.each(backends.map((b) => [b.name, b] as const))('ops on %s', (_name, be) => {
  const opts = { backend: be };

  describe('creation and readback', () => {
    it('infers shapes from nested arrays and reads back nested arrays', async () => {
      const t = tensor(
        [
          [1, 2, 3],
          [4, 5, 6],
        ],
        undefined,
        opts,
      );
      expect(t.shape).toEqual([2, 3]);
      expect(t.dtype).toBe('float32');
      expect(await t.toArray()).toEqual([
        [1, 2, 3],
        [4, 5, 6],
      ]);
      expect(await tensor([true, false], undefined, opts).toArray()).toEqual([true, false]);
      expect(await tensor([7], [], { ...opts, dtype: 'int32' }).item()).toBe(7);
    });
    it('rejects ragged arrays and wrong sizes', () => {
      expect(() => tensor([[1, 2], [3]], undefined, opts)).toThrow(/ragged/);
      expect(() => tensor(new Float32Array(5), [2, 3], opts)).toThrow(/5 values do not fill shape \[2,3\]/);
    });
    it('full, zeros, ones, arange, eye, tril masks', async () => {
      await expectClose(full([2, 2], 3.5, opts), [3.5, 3.5, 3.5, 3.5]);
      await expectClose(zeros([3], opts), [0, 0, 0]);
      await expectClose(ones([0, 4], opts), []);
      await expectClose(arange(2, 11, 3, opts), [2, 5, 8]);
      await expectClose(arange(4, undefined, 1, opts), [0, 1, 2, 3]);
      await expectClose(eye(2, 3, opts), [1, 0, 0, 0, 1, 0]);
      expect(await trilMask(3, 3, 0, opts).toArray()).toEqual([
        [true, false, false],
        [true, true, false],
        [true, true, true],
      ]);
    });
  });

  describe('elementwise', () => {
    const xs = [-3.5, -1, -0.25, 0, 0.3, 1, 2.75, 20];
    const pos = [0.01, 0.5, 1, 2, 7.5, 100];
    const f64: Record<string, (v: number) => number> = {
      neg: (v) => -v,
      abs: Math.abs,
      sign: Math.sign,
      exp: Math.exp,
      log: Math.log,
      log1p: Math.log1p,
      sqrt: Math.sqrt,
      rsqrt: (v) => 1 / Math.sqrt(v),
      sin: Math.sin,
      cos: Math.cos,
      tanh: Math.tanh,
      sigmoid: (v) => 1 / (1 + Math.exp(-v)),
      logsigmoid: (v) => -Math.log1p(Math.exp(-v)),
      relu: (v) => Math.max(v, 0),
      silu: (v) => v / (1 + Math.exp(-v)),
      floor: Math.floor,
    };
    for (const op of UNARY_OPS.filter((o) => o !== 'not')) {
      it(`${op} matches float64`, async () => {
        const domain = ['log', 'sqrt', 'rsqrt'].includes(op) ? pos : xs;
        const out = unaryOp(op, tensor(domain, undefined, opts));
        await expectClose(out, domain.map(f64[op]), 1e-6, 2e-6 * 4);
      });
    }
    it('logsigmoid and sigmoid are stable at large |x|', async () => {
      await expectClose(unaryOp('logsigmoid', tensor([-100, 100, -30], undefined, opts)), [-100, 0, -30], 1e-6, 1e-6);
      await expectClose(unaryOp('sigmoid', tensor([-100, 100], undefined, opts)), [0, 1], 1e-6, 0);
    });
    it('broadcasts NumPy style, including scalars and empty dims', async () => {
      const a = tensor([[1], [2], [3]], undefined, opts);
      const b = tensor([10, 20, 30, 40], undefined, opts);
      const c = add(a, b);
      expect(c.shape).toEqual([3, 4]);
      await expectClose(c, [11, 21, 31, 41, 12, 22, 32, 42, 13, 23, 33, 43]);
      await expectClose(mul(2, tensor([1, 2], undefined, opts)), [2, 4]);
      await expectClose(sub(tensor([1, 2], undefined, opts), 5), [-4, -3]);
      const e = add(zeros([0, 3], opts), ones([1, 3], opts));
      expect(e.shape).toEqual([0, 3]);
      await expectClose(e, []);
      const s = add(full([], 2, opts), ones([2, 1, 2], opts));
      expect(s.shape).toEqual([2, 1, 2]);
    });
    it('works on non-contiguous views', async () => {
      const x = flat([2, 3], [1, 2, 3, 4, 5, 6], be);
      const xt = transpose(x); // [3,2]: [[1,4],[2,5],[3,6]]
      await expectClose(add(xt, tensor([[100, 200]], undefined, opts)), [101, 204, 102, 205, 103, 206]);
      const sl = slice(arange(10, undefined, 1, { ...opts, dtype: 'float32' }), [[1, 9, 3]]);
      await expectClose(mul(sl, sl), [1, 16, 49]);
    });
    it('binary ops against float64', async () => {
      const a = [-2, -0.5, 0, 1.5, 3];
      const b = [0.5, 2, -1, 1.5, -4];
      const ta = tensor(a, undefined, opts);
      const tb = tensor(b, undefined, opts);
      await expectClose(
        div(ta, tb),
        a.map((v, i) => v / b[i]),
      );
      await expectClose(
        maximum(ta, tb),
        a.map((v, i) => Math.max(v, b[i])),
      );
      await expectClose(
        unaryOp('abs', ta).pow(tensor([2, 2, 2, 2, 2], undefined, opts)),
        a.map((v) => v * v),
      );
      expect(await gt(ta, tb).toArray()).toEqual(a.map((v, i) => v > b[i]));
      expect(await eq(ta, tb).toArray()).toEqual(a.map((v, i) => v === b[i]));
    });
    it('int32 arithmetic truncates and wraps', async () => {
      const a = tensor([7, -7, 2147483647], undefined, { ...opts, dtype: 'int32' });
      const b = tensor([2, 2, 1], undefined, { ...opts, dtype: 'int32' });
      expect(Array.from(await div(a, b).data())).toEqual([3, -3, 2147483647]);
      expect(Array.from(await add(a, b).data())).toEqual([9, -5, -2147483648]);
    });
    it('where and cast', async () => {
      const c = tensor([true, false, true], undefined, opts);
      await expectClose(where(c, tensor([1, 2, 3], undefined, opts), 0), [1, 0, 3]);
      expect(Array.from(await cast(tensor([-1.7, 2.9, 0], undefined, opts), 'int32').data())).toEqual([-1, 2, 0]);
      expect(await cast(tensor([0, 0.5, -3], undefined, opts), 'bool').toArray()).toEqual([false, true, true]);
    });
    it('names the op and shapes in errors', () => {
      const a = zeros([2, 3], opts);
      expect(() => add(a, zeros([4], opts))).toThrow(FoxgateError);
      expect(() => add(a, zeros([4], opts))).toThrow('add: shapes [2,3] and [4] do not broadcast');
      expect(() => add(a, zeros([2, 3], { ...opts, dtype: 'int32' }))).toThrow(/add: dtype mismatch: float32\[2,3\] and int32\[2,3\]/);
      expect(() => unaryOp('exp', zeros([2], { ...opts, dtype: 'int32' }))).toThrow(/exp: needs a float tensor/);
    });
  });

  describe('reductions', () => {
    const data = lcg(2 * 3 * 4, 7);
    const at = (i: number, j: number, k: number) => data[i * 12 + j * 4 + k];
    it('sum over any axes with keepdims and negative axes', async () => {
      const x = flat([2, 3, 4], data, be);
      const s02 = sum(x, [0, -1]);
      expect(s02.shape).toEqual([3]);
      await expectClose(
        s02,
        [0, 1, 2].map((j) => [0, 1].reduce((a, i) => a + [0, 1, 2, 3].reduce((b, k) => b + at(i, j, k), 0), 0)),
      );
      const s1 = sum(x, 1, true);
      expect(s1.shape).toEqual([2, 1, 4]);
      await expectClose(sum(x), [data.reduce((a, b) => a + b, 0)]);
    });
    it('max, min, argmax (first of ties), on a permuted view', async () => {
      const x = permute(flat([2, 3, 4], data, be), [2, 0, 1]); // [4,2,3]
      const mx = max(x, [1, 2]);
      await expectClose(
        mx,
        [0, 1, 2, 3].map((k) => Math.max(...[0, 1].flatMap((i) => [0, 1, 2].map((j) => at(i, j, k))))),
      );
      await expectClose(
        min(x, 0),
        [0, 1].flatMap((i) => [0, 1, 2].map((j) => Math.min(...[0, 1, 2, 3].map((k) => at(i, j, k))))),
      );
      const t = tensor(
        [
          [1, 5, 5, 2],
          [-1, -3, -1, -2],
        ],
        undefined,
        opts,
      );
      expect(Array.from(await argmax(t, -1).data())).toEqual([1, 0]);
      expect(Array.from(await argmax(t, 0).data())).toEqual([0, 0, 0, 0]);
    });
    it('sums 1e6 float32 values within 1e-5 relative', async () => {
      const n = 1 << 20;
      const v = new Float32Array(n);
      let exact = 0;
      for (let i = 0; i < n; i++) {
        v[i] = Math.fround(0.1 + ((i * 7919) % 1000) / 997);
        exact += v[i];
      }
      const got = await sum(tensor(v, undefined, opts)).item();
      expect(Math.abs(got - exact) / exact).toBeLessThan(1e-5);
    });
    it('mean and variance', async () => {
      const x = tensor(
        [
          [1, 2, 3, 4],
          [2, 4, 6, 8],
        ],
        undefined,
        opts,
      );
      await expectClose(mean(x, 1), [2.5, 5]);
      await expectClose(variance(x, 1), [1.25, 5]);
      await expectClose(variance(x, 1, { correction: 1 }), [5 / 3, 20 / 3]);
    });
    it('rejects bad axes', () => {
      expect(() => sum(zeros([2, 3], opts), 2)).toThrow('sum: axis 2 is out of range for a tensor of rank 2');
      expect(() => sum(zeros([2, 3], opts), [0, -2])).toThrow(/repeated axis/);
    });
  });

  describe('matmul', () => {
    function naive(a: number[], b: number[], M: number, K: number, N: number): number[] {
      const out: number[] = [];
      for (let i = 0; i < M; i++)
        for (let j = 0; j < N; j++) {
          let s = 0;
          for (let k = 0; k < K; k++) s += a[i * K + k] * b[k * N + j];
          out.push(s);
        }
      return out;
    }
    it.each([
      [1, 1, 1],
      [3, 5, 2],
      [17, 33, 9],
      [64, 64, 64],
      [70, 129, 65],
    ])('%i x %i x %i matches float64', async (M, K, N) => {
      const a = lcg(M * K, M);
      const b = lcg(K * N, N + 3);
      await expectClose(matmul(flat([M, K], a, be), flat([K, N], b, be)), naive(a, b, M, K, N), 1e-4, 1e-4);
    });
    it('broadcasts batch dims and takes transposed views', async () => {
      const a = lcg(2 * 3 * 4, 1);
      const b = lcg(4 * 5, 2);
      const out = matmul(flat([2, 3, 4], a, be), flat([5, 4], b, be).transpose());
      expect(out.shape).toEqual([2, 3, 5]);
      const bT = b.map((_, idx) => b[(idx % 5) * 4 + Math.floor(idx / 5)]); // [4,5] from [5,4]
      await expectClose(out, [...naive(a.slice(0, 12), bT, 3, 4, 5), ...naive(a.slice(12), bT, 3, 4, 5)], 1e-5, 1e-4);
    });
    it('1-D operands', async () => {
      const v = tensor([1, 2], undefined, opts);
      const m = tensor(
        [
          [1, 2, 3],
          [4, 5, 6],
        ],
        undefined,
        opts,
      );
      const r = matmul(v, m);
      expect(r.shape).toEqual([3]);
      await expectClose(r, [9, 12, 15]);
      expect(matmul(v, v).shape).toEqual([]);
    });
    it('rejects mismatched inner dims', () => {
      expect(() => matmul(zeros([2, 3], opts), zeros([4, 2], opts))).toThrow('matmul: inner dims differ: [2,3] @ [4,2] (3 vs 4)');
    });
  });

  describe('scan and indexing', () => {
    it('cumsum forward and reverse on a non-contiguous view', async () => {
      const x = transpose(flat([2, 3], [1, 2, 3, 4, 5, 6], be)); // [[1,4],[2,5],[3,6]]
      await expectClose(cumsum(x, 0), [1, 4, 3, 9, 6, 15]);
      await expectClose(cumsum(x, 0, { reverse: true }), [6, 15, 5, 11, 3, 6]);
      await expectClose(cumsum(x, -1), [1, 5, 2, 7, 3, 9]);
    });
    it('take (embedding lookup), takeAdjoint, takeAlongAxis', async () => {
      const w = flat([4, 2], [0, 1, 10, 11, 20, 21, 30, 31], be);
      const ids = tensor(
        [
          [3, 0],
          [1, 1],
        ],
        undefined,
        { ...opts, dtype: 'int32' },
      );
      const e = take(w, ids, 0);
      expect(e.shape).toEqual([2, 2, 2]);
      await expectClose(e, [30, 31, 0, 1, 10, 11, 10, 11]);
      const g = takeAdjoint(ones([2, 2, 2], opts), ids, 0, [4, 2]);
      await expectClose(g, [1, 1, 2, 2, 0, 0, 1, 1]);
      const x = flat([2, 3], [1, 2, 3, 4, 5, 6], be);
      const idx = tensor([[2], [0]], undefined, { ...opts, dtype: 'int32' });
      await expectClose(takeAlongAxis(x, idx, 1), [3, 4]);
    });
    it('concat and stack', async () => {
      const a = flat([2, 1], [1, 2], be);
      const b = flat([2, 2], [3, 4, 5, 6], be);
      await expectClose(concat([a, b], 1), [1, 3, 4, 2, 5, 6]);
      const s = stack([a, a], 0);
      expect(s.shape).toEqual([2, 2, 1]);
      expect(() => concat([a, zeros([3, 1], opts)], 1)).toThrow(/concat: shapes \[2,1\], \[3,1\] differ outside axis 1/);
    });
  });

  describe('views', () => {
    it('reshape, permute, slice with steps, expand, squeeze, unsqueeze, narrow', async () => {
      const x = arange(24, undefined, 1, { ...opts, dtype: 'float32' });
      const y = reshape(x, [2, 3, -1]);
      expect(y.shape).toEqual([2, 3, 4]);
      const p = permute(y, [2, 0, 1]);
      expect(p.isContiguous).toBe(false);
      const s = slice(p, [[1, 4, 2], 1, [null, null, 2]]);
      expect(s.shape).toEqual([2, 2]);
      // p[k,i,j] = 12i + 4j + k → k∈{1,3}, i=1, j∈{0,2}
      await expectClose(s, [13, 21, 15, 23]);
      await expectClose(reshape(p, [4, 6]), [0, 4, 8, 12, 16, 20, 1, 5, 9, 13, 17, 21, 2, 6, 10, 14, 18, 22, 3, 7, 11, 15, 19, 23]);
      const e = expand(tensor([[1], [2]], undefined, opts), [3, 2, 2]);
      await expectClose(e, [1, 1, 2, 2, 1, 1, 2, 2, 1, 1, 2, 2]);
      expect(squeeze(zeros([1, 3, 1], opts)).shape).toEqual([3]);
      expect(unsqueeze(zeros([3], opts), -1).shape).toEqual([3, 1]);
      await expectClose(narrow(y, 2, 1, 2), [1, 2, 5, 6, 9, 10, 13, 14, 17, 18, 21, 22]);
      expect(() => reshape(y, [5, 5])).toThrow('reshape: cannot reshape [2,3,4] (24 elements) into [5,5] (25 elements)');
      expect(() => expand(zeros([2, 3], opts), [4, 3])).toThrow(/expand: cannot expand \[2,3\] to \[4,3\]/);
    });
  });

  describe('composites', () => {
    const logits = [
      [1, 2, 3, 0.5],
      [-1, 0, 10, -20],
    ];
    const lse = logits.map((r) => Math.log(r.reduce((a, v) => a + Math.exp(v), 0)));
    it('softmax, logSoftmax, logsumexp', async () => {
      const x = tensor(logits, undefined, opts);
      await expectClose(logsumexp(x, -1), lse);
      await expectClose(
        softmax(x, -1),
        logits.flatMap((r, i) => r.map((v) => Math.exp(v - lse[i]))),
        1e-6,
        1e-5,
      );
      await expectClose(
        logSoftmax(x, 1),
        logits.flatMap((r, i) => r.map((v) => v - lse[i])),
        1e-5,
        1e-5,
      );
      await expectClose(logsumexp(tensor([1000, 1000], undefined, opts), 0), [1000 + Math.log(2)], 1e-3, 1e-6);
    });
    it('crossEntropy with ignore-index and reductions', async () => {
      const x = tensor(logits, undefined, opts);
      const labels = tensor([2, -100], undefined, { ...opts, dtype: 'int32' });
      await expectClose(crossEntropy(x, labels), [lse[0] - 3], 1e-5, 1e-5);
      const l2 = tensor([0, 3], undefined, { ...opts, dtype: 'int32' });
      await expectClose(crossEntropy(x, l2, { reduction: 'none' }), [lse[0] - 1, lse[1] + 20], 1e-5, 1e-5);
      await expectClose(crossEntropy(x, l2, { reduction: 'sum' }), [lse[0] - 1 + lse[1] + 20], 1e-4, 1e-5);
      expect(() => crossEntropy(x, tensor([1], undefined, { ...opts, dtype: 'int32' }))).toThrow(
        /crossEntropy: logits \[2,4\] must be labels \[1\] plus a class axis/,
      );
    });
    it('rmsNorm', async () => {
      const x = tensor(
        [
          [3, 4],
          [1, -1],
        ],
        undefined,
        opts,
      );
      const w = tensor([2, 0.5], undefined, opts);
      const r0 = 1 / Math.sqrt(12.5 + 1e-6);
      const r1 = 1 / Math.sqrt(1 + 1e-6);
      await expectClose(rmsNorm(x, w), [3 * r0 * 2, 4 * r0 * 0.5, r1 * 2, -r1 * 0.5], 1e-6, 1e-5);
    });
  });

  describe('softmax (fused primitive)', () => {
    const f32 = (shape: number[], values: ArrayLike<number>) => tensor(Float32Array.from(values), shape, opts);
    /** softmax of `x` (any layout) along `axis` against the float64 reference of its values. */
    async function check(x: Tensor, axis: number, atol = 1e-9, rtol = 1e-5) {
      const vals = Array.from(await x.data());
      const y = softmax(x, axis);
      expect(y.shape).toEqual(x.shape);
      expect(y.dtype).toBe(x.dtype);
      await expectClose(y, softmaxRef(vals, [...x.shape], axis), atol, rtol);
    }
    /** Rows of length `L`: random values with `special(row, j)` overriding some entries. */
    function rowsWith(R: number, L: number, special: (r: number, j: number) => number | undefined, seed = 5): number[] {
      const v = lcg(R * L, seed).map((u) => 4 * u);
      for (let r = 0; r < R; r++) {
        for (let j = 0; j < L; j++) {
          const s = special(r, j);
          if (s !== undefined) v[r * L + j] = s;
        }
      }
      return v;
    }

    it('[3,5] along axis -1 and axis 0, [2,3,1000] along the last and a middle axis', async () => {
      const x = f32(
        [3, 5],
        lcg(15, 2).map((u) => 3 * u),
      );
      await check(x, -1);
      await check(x, 0);
      await check(x, 1);
      const y = f32(
        [2, 3, 1000],
        lcg(6000, 3).map((u) => 5 * u),
      );
      await check(y, -1);
      await check(y, 1);
    });
    it('long rows: [4, 16388] (vec4) and [3, 16385] (scalar), past the register path', async () => {
      await check(
        f32(
          [4, 16388],
          lcg(4 * 16388, 4).map((u) => 6 * u),
        ),
        -1,
      );
      await check(
        f32(
          [3, 16385],
          lcg(3 * 16385, 5).map((u) => 6 * u),
        ),
        -1,
      );
      await check(
        f32(
          [2, 16384],
          lcg(2 * 16384, 6).map((u) => 6 * u),
        ),
        -1,
      );
    });
    it('many short rows: [70000, 4] (webgpu-kernels.test.ts also runs > 65,535 workgroup rows)', async () => {
      await check(
        f32(
          [70000, 4],
          lcg(280000, 7).map((u) => 3 * u),
        ),
        -1,
      );
    });
    it('non-contiguous inputs: transposed, strided and offset slices, permuted', async () => {
      const x = f32(
        [40, 48],
        lcg(40 * 48, 9).map((u) => 3 * u),
      );
      await check(transpose(x), -1);
      await check(transpose(x), 0);
      const big = f32(
        [10, 300],
        lcg(3000, 10).map((u) => 3 * u),
      );
      await check(
        slice(big, [
          [1, 9, 2],
          [3, 299],
        ]),
        -1,
      );
      await check(
        slice(big, [
          [0, 10, 3],
          [4, 296],
        ]),
        -1,
      );
      await check(
        slice(big, [
          [2, 8],
          [0, 300, 7],
        ]),
        -1,
      );
      const p = permute(
        f32(
          [6, 5, 70],
          lcg(2100, 11).map((u) => 3 * u),
        ),
        [2, 0, 1],
      );
      await check(p, 0);
      await check(p, 1);
      await check(p, 2);
    });
    it('large magnitudes do not overflow', async () => {
      const x = f32([3, 4], [1e30, -1e30, 0, 5, 1e30, 1e30, -1e30, -1e30, -1e30, -2e30, -1e30, -3e30]);
      await check(x, -1);
      await expectClose(softmax(x, -1), [1, 0, 0, 0, 0.5, 0.5, 0, 0, 0.5, 0, 0.5, 0], 1e-7, 1e-6);
      await check(
        f32(
          [3, 64],
          rowsWith(3, 64, (r, j) => (j === r * 5 ? 1e30 : j % 7 === 0 ? -1e30 : undefined)),
        ),
        -1,
      );
      await check(
        f32(
          [2, 20000],
          rowsWith(2, 20000, (r, j) => (j === 17 + r ? 3e38 : j % 3 === 0 ? -3e38 : undefined)),
        ),
        -1,
      );
    });
    it('-Infinity entries give 0; a row of only -Infinity is NaN (as max/sub/exp/sum/div)', async () => {
      const inf = Number.NEGATIVE_INFINITY;
      const x = f32([3, 4], [inf, 1, inf, 2, inf, inf, inf, inf, 0, inf, 0, 0]);
      await check(x, -1);
      const y = Array.from(await softmax(x, -1).data());
      expect(y.slice(4, 8).every(Number.isNaN)).toBe(true);
      expect([y[0], y[2], y[9]]).toEqual([0, 0, 0]);
      // longer rows (register / streaming paths on WebGPU), incl. threads that see only -Infinity
      const rowsInf = (L: number) =>
        rowsWith(3, L, (r, j) =>
          r === 1 ? inf : r === 0 && (j % 1024 < 8 || j % 5 === 0) ? inf : r === 2 && j % 256 === 3 ? inf : undefined,
        );
      await check(f32([3, 64], rowsInf(64)), -1);
      await check(f32([3, 3000], rowsInf(3000)), -1);
      await check(f32([3, 40000], rowsInf(40000)), -1);
      await check(f32([3, 40001], rowsInf(40001)), -1);
      await check(f32([3, 20], rowsInf(20)), -1);
    });
    it('NaN or +Infinity in a row makes that row NaN, other rows are untouched', async () => {
      const special = (r: number, j: number) =>
        r === 0 && j === 3 ? Number.NaN : r === 2 && j === 1 ? Number.POSITIVE_INFINITY : undefined;
      for (const L of [5, 64, 2001, 16384, 40000]) {
        const x = f32([4, L], rowsWith(4, L, special));
        await check(x, -1);
        const y = await softmax(x, -1).data();
        expect(Number.isNaN(y[0]) && Number.isNaN(y[2 * L + L - 1])).toBe(true);
        expect(Number.isNaN(y[L]) || Number.isNaN(y[3 * L])).toBe(false);
      }
      const col = f32(
        [6, 3],
        rowsWith(6, 3, (r, j) => (r === 4 && j === 1 ? Number.NaN : undefined)),
      );
      await check(col, 0);
    });
    it('empty tensors, length-1 rows, scalars; integer inputs are rejected', async () => {
      for (const [shape, axis] of [
        [[0, 5], -1],
        [[5, 0], -1],
        [[5, 0], 0],
        [[2, 0, 3], 1],
      ] as [number[], number][]) {
        const y = softmax(zeros(shape, opts), axis);
        expect(y.shape).toEqual(shape);
        expect(Array.from(await y.data())).toEqual([]);
      }
      await expectClose(softmax(f32([3, 1], [5, -2, 1e30]), -1), [1, 1, 1]);
      await expectClose(softmax(f32([1, 3], [5, -2, 1]), 0), [1, 1, 1]);
      await expectClose(softmax(tensor(7, [], opts)), [1]);
      expect(() => softmax(tensor([1, 2], [2], { ...opts, dtype: 'int32' }))).toThrow(
        'softmax: needs a float tensor, got int32[2]; cast first',
      );
      expect(() => softmax(tensor([true], [1], { ...opts, dtype: 'bool' }))).toThrow(/softmax: needs a float tensor, got bool/);
      expect(() => softmax(zeros([2, 3], opts), 2)).toThrow(/softmax: axis 2 is out of range/);
    });
  });

  describe('random', () => {
    it('is deterministic per key and in range', async () => {
      const a = await randomUniform([1, 2], [1000], opts).data();
      const b = await randomUniform([1, 2], [1000], opts).data();
      const c = await randomUniform([1, 3], [1000], opts).data();
      expect(Array.from(a)).toEqual(Array.from(b));
      expect(Array.from(a)).not.toEqual(Array.from(c));
      expect(Math.min(...a)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...a)).toBeLessThan(1);
      const n = Array.from(await randomNormal([5, 6], [4000], { ...opts, mean: 2, std: 3 }).data());
      const m = n.reduce((s, v) => s + v, 0) / n.length;
      expect(Math.abs(m - 2)).toBeLessThan(0.2);
      const ri = await randint([9, 9], 3, 7, [500], opts).data();
      expect(Math.min(...ri)).toBe(3);
      expect(Math.max(...ri)).toBe(6);
      const bern = await sum(cast(bernoulli([4, 4], 0.25, [4000], opts), 'int32')).item();
      expect(Math.abs(bern / 4000 - 0.25)).toBeLessThan(0.03);
    });
  });

  describe('memory', () => {
    it('tidy frees everything but its result; use after dispose throws', async () => {
      const before = memoryStats().backends[be.name].tensors;
      const kept = tidy(() => {
        const a = ones([8], opts);
        const b = mul(a, 3);
        return { out: add(b, 1) };
      });
      expect(memoryStats().backends[be.name].tensors).toBe(before + 1);
      await expectClose(kept.out, new Array(8).fill(4));
      kept.out.dispose();
      expect(memoryStats().backends[be.name].tensors).toBe(before);
      expect(() => add(kept.out, 1)).toThrow(/used after dispose/);
    });
  });
});

describe('float64 on the CPU', () => {
  it('keeps double precision', async () => {
    const x = tensor([1e-10, 1], undefined, { dtype: 'float64' });
    const s = await sum(add(x, 1e-10)).item();
    expect(Math.abs(s - (1 + 3e-10))).toBeLessThan(1e-15);
  });
  it('softmax in float64 matches the reference to rounding, on strided views too', async () => {
    const vals = lcg(4 * 7, 12).map((u) => 20 * u + 1e-9);
    const x = tensor(Float64Array.from(vals), [4, 7], { dtype: 'float64' });
    const y = softmax(x, -1);
    expect(y.dtype).toBe('float64');
    expect(closeTo(await y.data(), softmaxRef(vals, [4, 7], -1), 1e-16, 1e-14)).toBeNull();
    const t = transpose(x);
    expect(closeTo(await softmax(t, 0).data(), softmaxRef(Array.from(await t.data()), [7, 4], 0), 1e-16, 1e-14)).toBeNull();
  });
});
