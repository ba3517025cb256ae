import { afterAll, describe, expect, it } from 'vitest';
import { BINARY_OPS, type BinaryOp, type ReduceOp, UNARY_OPS, type UnaryOp } from '../src/backend.js';
import { softmax as softmaxKernel } from '../src/backends/webgpu/kernels/softmax.js';
import type { DType } from '../src/dtype.js';
import { FoxgateError } from '../src/errors.js';
import { sizeOf } from '../src/shape.js';
import { sumAccuracyData } from './util/accuracy.js';
import { both, cpu, destroyTestWebGPU, mismatch, permutedSpec, testWebGPU, type ViewSpec, values, viewOn } from './util/webgpu.js';

const gpu = await testWebGPU();
afterAll(destroyTestWebGPU);

const FLOAT_ONLY = new Set<UnaryOp>(['exp', 'log', 'log1p', 'sqrt', 'rsqrt', 'sin', 'cos', 'tanh', 'sigmoid', 'logsigmoid', 'silu']);
const POSITIVE = new Set<UnaryOp>(['log', 'sqrt', 'rsqrt']);

/** Strided, broadcast, offset, empty, size-1 and odd layouts of `shape`-ish data. */
function layouts(dtype: DType, seed: number): { label: string; spec: ViewSpec }[] {
  const base = values(200, dtype, seed);
  return [
    { label: 'contiguous [3,5,7]', spec: { data: values(105, dtype, seed), dtype, shape: [3, 5, 7] } },
    { label: 'transposed [5,7]', spec: permutedSpec([5, 7], [1, 0], dtype, seed) },
    { label: 'permuted [2,3,4]', spec: permutedSpec([2, 3, 4], [2, 0, 1], dtype, seed) },
    { label: 'offset+step [4,6]', spec: { data: base, dtype, shape: [4, 6], strides: [20, 3], offset: 7 } },
    { label: 'broadcast [3,4] from [4]', spec: { data: base, dtype, shape: [3, 4], strides: [0, 1], offset: 5 } },
    { label: 'scalar []', spec: { data: base, dtype, shape: [], strides: [], offset: 3 } },
    { label: 'size-1 [1,1,1]', spec: { data: base, dtype, shape: [1, 1, 1], offset: 11 } },
    { label: 'empty [0,3]', spec: { data: base, dtype, shape: [0, 3] } },
    { label: 'odd flat [1001]', spec: { data: values(1001, dtype, seed), dtype, shape: [1001] } },
    { label: 'vec4 flat [64] offset 8', spec: { data: base, dtype, shape: [64], strides: [1], offset: 8 } },
  ];
}

function adjust(op: UnaryOp, spec: ViewSpec): ViewSpec {
  if (!POSITIVE.has(op)) return spec;
  const data = spec.data.map((v) => Math.abs(v) + 0.01) as typeof spec.data;
  return { ...spec, data };
}

describe.skipIf(!gpu)('webgpu elementwise', () => {
  it('every unary op matches the cpu on every layout (float32)', async () => {
    for (const op of UNARY_OPS) {
      if (op === 'not') continue;
      for (const { label, spec } of layouts('float32', 3)) {
        const s = adjust(op, spec);
        const n = sizeOf(s.shape);
        const [g, c] = await both(gpu!, [s], (b, [x]) => b.unary(op, x, 'float32'), 'float32', n);
        const err = mismatch(g, c, 2e-6, op === 'sin' || op === 'cos' ? 1e-5 : 4e-6);
        expect(err, `${op} ${label}`).toBeNull();
      }
    }
  });

  it('unary special values: NaN, ±inf, ±0, large and tiny arguments', async () => {
    const data = new Float32Array([Number.NaN, Infinity, -Infinity, 0, -0, 1e-8, -1e-8, 1e-3, -0.04, 50, -50, 100, -100, 88, -104, 0.5]);
    for (const op of UNARY_OPS) {
      if (op === 'not' || op === 'sin' || op === 'cos') continue;
      const [g, c] = await both(gpu!, [{ data, dtype: 'float32', shape: [16] }], (b, [x]) => b.unary(op, x, 'float32'), 'float32', 16);
      expect(mismatch(g, c, 1e-30, 2e-6), op).toBeNull();
    }
  });

  it('integer and bool unary ops', async () => {
    for (const dtype of ['int32', 'uint32'] as DType[]) {
      for (const op of UNARY_OPS) {
        if (FLOAT_ONLY.has(op) || op === 'not') continue;
        for (const { label, spec } of layouts(dtype, 5)) {
          const n = sizeOf(spec.shape);
          const [g, c] = await both(gpu!, [spec], (b, [x]) => b.unary(op, x, dtype), dtype, n);
          expect(Array.from(g), `${op} ${dtype} ${label}`).toEqual(Array.from(c));
        }
      }
    }
    const spec: ViewSpec = { data: values(37, 'bool', 9), dtype: 'bool', shape: [37] };
    const [g, c] = await both(gpu!, [spec], (b, [x]) => b.unary('not', x, 'bool'), 'bool', 37);
    expect(g).toBeInstanceOf(Uint8Array);
    expect(Array.from(g)).toEqual(Array.from(c));
  });

  it('every binary op with broadcasting and strides (float32, int32, uint32, bool)', async () => {
    const shape = [3, 4, 5];
    const a = (dtype: DType): ViewSpec => ({ data: values(15, dtype, 21), dtype, shape, strides: [5, 0, 1] }); // [3,1,5] broadcast
    const b = (dtype: DType): ViewSpec => permutedSpec(shape, [2, 1, 0], dtype, 22); // reversed axes
    const cases: [DType, BinaryOp[]][] = [
      ['float32', BINARY_OPS.filter((o) => o !== 'and' && o !== 'or')],
      ['int32', BINARY_OPS.filter((o) => o !== 'and' && o !== 'or' && o !== 'pow')],
      ['uint32', BINARY_OPS.filter((o) => o !== 'and' && o !== 'or' && o !== 'pow')],
      ['bool', ['eq', 'ne', 'and', 'or']],
    ];
    for (const [dtype, ops] of cases) {
      for (const op of ops) {
        const cmp = ['lt', 'le', 'gt', 'ge', 'eq', 'ne'].includes(op);
        const outDtype: DType = cmp || dtype === 'bool' ? 'bool' : dtype;
        const sa = a(dtype);
        let sb = b(dtype);
        if (op === 'pow') sb = { ...sb, data: sb.data.map((v, i) => (i % 3 === 0 ? Math.round(v) : v)) as typeof sb.data };
        const [g, c] = await both(gpu!, [sa, sb], (bk, [x, y]) => bk.binary(op, x, y, shape, outDtype), outDtype, 60);
        if (dtype === 'float32') expect(mismatch(g, c, 1e-6, op === 'pow' ? 2e-5 : 1e-6), `${op}`).toBeNull();
        else expect(Array.from(g), `${op} ${dtype}`).toEqual(Array.from(c));
      }
    }
  });

  it('binary vec4 rows: padded rows with a per-row broadcast operand (softmax-style)', async () => {
    const shape = [6, 12];
    const x: ViewSpec = { data: values(6 * 16 + 4, 'float32', 31), dtype: 'float32', shape, strides: [16, 1], offset: 4 };
    const m: ViewSpec = { data: values(7, 'float32', 32), dtype: 'float32', shape, strides: [1, 0], offset: 1 };
    for (const op of ['sub', 'div', 'maximum'] as BinaryOp[]) {
      const [g, c] = await both(gpu!, [x, m], (bk, [a, b]) => bk.binary(op, a, b, shape, 'float32'), 'float32', 72);
      expect(mismatch(g, c), op).toBeNull();
      const [g2, c2] = await both(gpu!, [m, x], (bk, [a, b]) => bk.binary(op, a, b, shape, 'float32'), 'float32', 72);
      expect(mismatch(g2, c2), `${op} swapped`).toBeNull();
    }
  });

  it('binary on empty, scalar and vec4-with-scalar layouts', async () => {
    for (const shape of [[0, 4], [], [1], [4099]]) {
      const n = sizeOf(shape);
      const sa: ViewSpec = { data: values(Math.max(n, 1), 'float32', 2), dtype: 'float32', shape };
      const sb: ViewSpec = { data: values(1, 'float32', 3), dtype: 'float32', shape, strides: shape.map(() => 0) };
      const [g, c] = await both(gpu!, [sa, sb], (bk, [x, y]) => bk.binary('mul', x, y, shape, 'float32'), 'float32', n);
      expect(mismatch(g, c), JSON.stringify(shape)).toBeNull();
    }
  });

  it('comparisons with NaN follow JS', async () => {
    const a = new Float32Array([Number.NaN, 1, Number.NaN, 0, -0]);
    const b = new Float32Array([Number.NaN, Number.NaN, 1, -0, 0]);
    for (const op of ['lt', 'le', 'gt', 'ge', 'eq', 'ne'] as BinaryOp[]) {
      const specs: ViewSpec[] = [
        { data: a, dtype: 'float32', shape: [5] },
        { data: b, dtype: 'float32', shape: [5] },
      ];
      const [g, c] = await both(gpu!, specs, (bk, [x, y]) => bk.binary(op, x, y, [5], 'bool'), 'bool', 5);
      expect(Array.from(g), op).toEqual(Array.from(c));
    }
  });

  it('pow follows JS semantics on special cases', async () => {
    const a = new Float32Array([-2, -2, -8, 0, 0, -0, 2, 1, Number.NaN, 4, -1, 0.5, 3, 10]);
    const e = new Float32Array([3, 2, 1 / 3, -1, 0, -3, 0.5, Number.NaN, 0, -2, Infinity, -Infinity, 2.5, 30]);
    const [g, c] = await both(
      gpu!,
      [
        { data: a, dtype: 'float32', shape: [14] },
        { data: e, dtype: 'float32', shape: [14] },
      ],
      (b, [x, y]) => b.binary('pow', x, y, [14], 'float32'),
      'float32',
      14,
    );
    expect(mismatch(g, c, 0, 1e-6)).toBeNull();
  });

  it('where, cast between every dtype pair, fill and copy', async () => {
    const shape = [4, 6];
    const cond: ViewSpec = { data: values(6, 'bool', 4), dtype: 'bool', shape, strides: [0, 1] };
    for (const dtype of ['float32', 'int32', 'uint32', 'bool'] as DType[]) {
      const x: ViewSpec = permutedSpec(shape, [1, 0], dtype, 5);
      const y: ViewSpec = { data: values(4, dtype, 6), dtype, shape, strides: [1, 0] };
      const [g, c] = await both(gpu!, [cond, x, y], (b, [cv, xv, yv]) => b.where(cv, xv, yv, shape), dtype, 24);
      expect(Array.from(g), `where ${dtype}`).toEqual(Array.from(c));
    }
    const special = new Float32Array([0.5, -0.5, 1.9, -1.9, 3e9, -3e9, 5e9, Number.NaN, -0, 16777217, 2147483520, -2147483648]);
    for (const from of ['float32', 'int32', 'uint32', 'bool'] as DType[]) {
      for (const to of ['float32', 'int32', 'uint32', 'bool'] as DType[]) {
        if (from === to) continue;
        const spec: ViewSpec =
          from === 'float32'
            ? { data: special, dtype: from, shape: [12] }
            : { data: values(12, from, 7, 1e8), dtype: from, shape: [3, 4], strides: [1, 3] };
        const n = 12;
        const [g, c] = await both(gpu!, [spec], (b, [x]) => b.cast(x, to), to, n);
        expect(Array.from(g), `cast ${from}→${to}`).toEqual(Array.from(c));
      }
    }
    for (const [dtype, v] of [
      ['float32', -1.5],
      ['float32', Number.NaN],
      ['int32', -7],
      ['uint32', 4294967295],
      ['bool', 1],
    ] as [DType, number][]) {
      for (const n of [0, 1, 5, 1030]) {
        const g = await gpu!.read(gpu!.fill(n, v, dtype), dtype, n);
        const c = await cpu.read(cpu.fill(n, v, dtype), dtype, n);
        expect(Array.from(g), `fill ${dtype} ${v} ${n}`).toEqual(Array.from(c));
      }
    }
    for (const { label, spec } of layouts('int32', 8)) {
      const n = sizeOf(spec.shape);
      const [g, c] = await both(gpu!, [spec], (b, [x]) => b.copy(x), 'int32', n);
      expect(Array.from(g), `copy ${label}`).toEqual(Array.from(c));
    }
  });

  it('float64 is refused with a clear error', () => {
    expect(() => gpu!.upload(new Float64Array(3), 'float64')).toThrow(FoxgateError);
    expect(() => gpu!.upload(new Float64Array(3), 'float64')).toThrow(/float64 is only supported on the cpu backend/);
    expect(() => gpu!.fill(3, 1, 'float64')).toThrow(/float64 is only supported on the cpu backend/);
    expect(() => gpu!.random('uniform', [1, 2], 4, 'float64')).toThrow(/float64 is only supported on the cpu backend/);
  });
});

describe.skipIf(!gpu)('webgpu reductions', () => {
  const ops: ReduceOp[] = ['sum', 'max', 'min', 'argmax'];

  it('every reduction over every axis set of strided views matches the cpu', async () => {
    const shape = [4, 5, 6];
    const specs: [string, ViewSpec][] = [
      ['contiguous', { data: values(120, 'float32', 1), dtype: 'float32', shape }],
      ['permuted', permutedSpec(shape, [2, 0, 1], 'float32', 2)],
      ['broadcast', { data: values(30, 'float32', 3), dtype: 'float32', shape, strides: [0, 6, 1] }],
    ];
    const axesSets = [[0], [1], [2], [0, 1], [0, 2], [1, 2], [0, 1, 2]];
    for (const [label, spec] of specs) {
      for (const op of ops) {
        for (const axes of axesSets) {
          if (op === 'argmax' && axes.length !== 1) continue;
          const outSize = shape.filter((_, d) => !axes.includes(d)).reduce((n, d) => n * d, 1);
          const outDtype: DType = op === 'argmax' ? 'int32' : 'float32';
          const [g, c] = await both(gpu!, [spec], (b, [x]) => b.reduce(op, x, axes), outDtype, outSize);
          expect(mismatch(g, c, 1e-5, 1e-5), `${op} ${label} axes ${axes}`).toBeNull();
        }
      }
    }
  });

  it('multi-pass rows and columns, ints and bools', async () => {
    const cases: { label: string; spec: ViewSpec; axes: number[]; out: number }[] = [
      {
        label: 'long rows [3,10000] axis 1',
        spec: { data: values(30000, 'float32', 4), dtype: 'float32', shape: [3, 10000] },
        axes: [1],
        out: 3,
      },
      { label: 'columns [700,9] axis 0', spec: { data: values(6300, 'float32', 5), dtype: 'float32', shape: [700, 9] }, axes: [0], out: 9 },
      {
        label: 'one long column pair [70000,2]',
        spec: { data: values(140000, 'float32', 6), dtype: 'float32', shape: [70000, 2], strides: [2, 1] },
        axes: [0],
        out: 2,
      },
      {
        label: 'short rows [500,7] axis 1',
        spec: { data: values(3500, 'float32', 7), dtype: 'float32', shape: [500, 7] },
        axes: [1],
        out: 500,
      },
    ];
    for (const { label, spec, axes, out } of cases) {
      for (const op of ops) {
        const outDtype: DType = op === 'argmax' ? 'int32' : 'float32';
        const [g, c] = await both(gpu!, [spec], (b, [x]) => b.reduce(op, x, axes), outDtype, out);
        expect(mismatch(g, c, 1e-4, 1e-5), `${op} ${label}`).toBeNull();
      }
    }
    for (const dtype of ['int32', 'uint32'] as DType[]) {
      const spec: ViewSpec = { data: values(9000, dtype, 8, 1e7), dtype, shape: [3, 3000] };
      for (const op of ops) {
        const outDtype: DType = op === 'argmax' ? 'int32' : dtype;
        const [g, c] = await both(gpu!, [spec], (b, [x]) => b.reduce(op, x, [1]), outDtype, 3);
        expect(Array.from(g), `${op} ${dtype}`).toEqual(Array.from(c));
      }
    }
    const bools: ViewSpec = { data: values(5000, 'bool', 9), dtype: 'bool', shape: [5, 1000] };
    const [g, c] = await both(gpu!, [bools], (b, [x]) => b.reduce('sum', x, [1]), 'int32', 5);
    expect(Array.from(g)).toEqual(Array.from(c));
  });

  it('short rows (33..1024 elements, several rows per workgroup) match the cpu', async () => {
    const check = async (label: string, spec: ViewSpec, axes: number[], out: number, dtypes = ['float32'] as DType[]) => {
      for (const dtype of dtypes) {
        const sp = { ...spec, dtype, data: dtype === 'float32' ? spec.data : values(spec.data.length, dtype, out) };
        for (const op of axes.length === 1 ? ops : ops.filter((o) => o !== 'argmax')) {
          const outDtype: DType = op === 'argmax' ? 'int32' : dtype;
          const [g, c] = await both(gpu!, [sp], (b, [x]) => b.reduce(op, x, axes), outDtype, out);
          const msg = `${op} ${dtype} ${label}`;
          if (dtype === 'float32') expect(mismatch(g, c, 1e-5, 1e-5), msg).toBeNull();
          else expect(Array.from(g), msg).toEqual(Array.from(c));
        }
      }
    };
    // 4, 4, 4, 16, 32 lanes; 1025 is the first long row
    for (const L of [33, 64, 100, 257, 1000, 1025]) {
      const spec: ViewSpec = { data: values(37 * L, 'float32', L), dtype: 'float32', shape: [37, L] };
      await check(`[37,${L}]`, spec, [1], 37, ['float32', 'int32', 'uint32']);
    }
    // x[1:, ::2, 5:105] of a [6, 8, 130] buffer: strided kept axes, an offset, one or two reduced axes
    const base = values(6 * 8 * 130, 'float32', 11);
    const sliced: ViewSpec = { data: base, dtype: 'float32', shape: [5, 4, 100], strides: [1040, 260, 1], offset: 1045 };
    await check('sliced rows', sliced, [2], 20, ['float32', 'int32']);
    await check('sliced, two reduced axes', sliced, [1, 2], 5);
    // reduced elements two apart (still a row pass: the kept axis is not the inner one)
    const stepped: ViewSpec = { data: values(12000, 'float32', 12), dtype: 'float32', shape: [40, 100], strides: [300, 2], offset: 1 };
    await check('stepped rows', stepped, [1], 40);
    const bools: ViewSpec = { data: values(50 * 64, 'bool', 13), dtype: 'bool', shape: [50, 64] };
    const [g, c] = await both(gpu!, [bools], (b, [x]) => b.reduce('sum', x, [1]), 'int32', 50);
    expect(Array.from(g)).toEqual(Array.from(c));
  });

  it('short rows: argmax ties and NaNs, max/min NaN, argmax partials of a long row', async () => {
    const L = 64;
    const data = new Float32Array(6 * L).fill(1);
    data.fill(2, 0, L); // row 0: all tied → 0
    data[L + 50] = 5; // row 1: tie at 10 (lane 2) and 50 (lane 2, later) → 10
    data[L + 10] = 5;
    data[2 * L + 3] = 9; // row 2: NaN beats the maximum → 40
    data[2 * L + 40] = Number.NaN;
    data[3 * L + 60] = Number.NaN; // row 3: first NaN → 20
    data[3 * L + 20] = Number.NaN;
    data[4 * L + L - 1] = 3; // row 4: the last element
    data[5 * L + 9] = 4; // row 5: tie across lanes (9 in lane 1, 2 in lane 2) → 2
    data[5 * L + 2] = 4;
    const spec: ViewSpec = { data, dtype: 'float32', shape: [6, L] };
    const [g, c] = await both(gpu!, [spec], (b, [x]) => b.reduce('argmax', x, [1]), 'int32', 6);
    expect(Array.from(g)).toEqual([0, 10, 40, 20, L - 1, 2]);
    expect(Array.from(g)).toEqual(Array.from(c));
    for (const op of ['max', 'min'] as ReduceOp[]) {
      const [gm, cm] = await both(gpu!, [spec], (b, [x]) => b.reduce(op, x, [1]), 'float32', 6);
      expect(Number.isNaN(gm[2]) && Number.isNaN(gm[3]), op).toBe(true);
      expect(mismatch(gm, cm, 0, 0), op).toBeNull();
    }
    // [2, 200000]: 49 partials per row, reduced by a short-row pass that carries the indices
    const long = new Float32Array(400000).fill(-1);
    long[123457] = 7;
    long[199999] = 7;
    long[200000 + 150001] = Number.NaN;
    long[200000 + 5] = Number.NaN;
    const lspec: ViewSpec = { data: long, dtype: 'float32', shape: [2, 200000] };
    const [gl, cl] = await both(gpu!, [lspec], (b, [x]) => b.reduce('argmax', x, [1]), 'int32', 2);
    expect(Array.from(gl)).toEqual([123457, 5]);
    expect(Array.from(gl)).toEqual(Array.from(cl));
  });

  it('short rows over more than 65535 workgroups (folded grid)', async () => {
    // 4.2M overlapping rows of 33 (row i starts at element i): 65625 workgroups of 64 rows
    const O = 4_200_000;
    const L = 33;
    const spec: ViewSpec = { data: values(O + L - 1, 'int32', 14), dtype: 'int32', shape: [O, L], strides: [1, 1] };
    const [g, c] = await both(gpu!, [spec], (b, [x]) => b.reduce('sum', x, [1]), 'int32', O);
    expect(mismatch(g, c, 0, 0)).toBeNull();
  });

  it('argmax: first maximum wins ties, NaN counts as the maximum', async () => {
    const data = new Float32Array(3000).fill(1);
    data[1500] = 5;
    data[2900] = 5;
    data[100 + 1000] = Number.NaN;
    const spec: ViewSpec = { data, dtype: 'float32', shape: [3000] };
    const [g, c] = await both(gpu!, [spec], (b, [x]) => b.reduce('argmax', x, [0]), 'int32', 1);
    expect(g[0]).toBe(1100);
    expect(Array.from(g)).toEqual(Array.from(c));
    const ties = { data: new Float32Array(600).fill(2), dtype: 'float32' as DType, shape: [600] };
    const [g2] = await both(gpu!, [ties], (b, [x]) => b.reduce('argmax', x, [0]), 'int32', 1);
    expect(g2[0]).toBe(0);
  });

  it('empty reductions give the identity; empty outputs are empty', async () => {
    const spec: ViewSpec = { data: new Float32Array(1), dtype: 'float32', shape: [3, 0] };
    for (const op of ['sum', 'max', 'min'] as ReduceOp[]) {
      const [g, c] = await both(gpu!, [spec], (b, [x]) => b.reduce(op, x, [1]), 'float32', 3);
      expect(Array.from(g), op).toEqual(Array.from(c));
    }
    const [g] = await both(gpu!, [spec], (b, [x]) => b.reduce('sum', x, [0]), 'float32', 0);
    expect(g.length).toBe(0);
  });

  it('float32 sum of 1e6 elements is within 1e-5 relative of the float64 sum', async () => {
    const n = 1_000_000;
    const { data, exact } = sumAccuracyData(n);
    const x = viewOn(gpu!, { data, dtype: 'float32', shape: [n] });
    const s = gpu!.reduce('sum', x, [0]);
    const got = (await gpu!.read(s, 'float32', 1))[0];
    expect(Math.abs(got - exact) / exact).toBeLessThan(1e-5);
    // the same data as a strided column: [n/2, 2] reduced over axis 0
    const y = { ...x, shape: [n / 2, 2], strides: [2, 1] };
    const s2 = gpu!.reduce('sum', y, [0]);
    const got2 = await gpu!.read(s2, 'float32', 2);
    let e0 = 0;
    let e1 = 0;
    for (let i = 0; i < n; i += 2) {
      e0 += data[i];
      e1 += data[i + 1];
    }
    expect(Math.abs(got2[0] - e0) / e0).toBeLessThan(1e-5);
    expect(Math.abs(got2[1] - e1) / e1).toBeLessThan(1e-5);
    for (const st of [x.storage, s, s2]) gpu!.free(st);
  });
});

describe.skipIf(!gpu)('webgpu cumsum', () => {
  it('forward and reverse along every axis, short and long lines, float and int', async () => {
    const cases: { shape: number[]; spec: (d: DType) => ViewSpec }[] = [
      { shape: [3, 4, 5], spec: (d) => permutedSpec([3, 4, 5], [1, 2, 0], d, 3) },
      { shape: [2, 2500], spec: (d) => ({ data: values(5000, d, 4), dtype: d, shape: [2, 2500] }) },
      { shape: [300, 3], spec: (d) => ({ data: values(1501, d, 5), dtype: d, shape: [300, 3], strides: [5, 2], offset: 1 }) },
      { shape: [1], spec: (d) => ({ data: values(3, d, 6), dtype: d, shape: [1], offset: 2 }) },
      { shape: [0, 4], spec: (d) => ({ data: values(3, d, 6), dtype: d, shape: [0, 4] }) },
    ];
    for (const dtype of ['float32', 'int32'] as DType[]) {
      for (const { shape, spec } of cases) {
        for (let axis = 0; axis < shape.length; axis++) {
          for (const reverse of [false, true]) {
            const n = sizeOf(shape);
            const [g, c] = await both(gpu!, [spec(dtype)], (b, [x]) => b.cumsum(x, axis, reverse), dtype, n);
            const label = `${dtype} ${shape} axis ${axis} reverse ${reverse}`;
            // running float32 sums vs the cpu's: allow L·eps-sized drift
            if (dtype === 'float32') expect(mismatch(g, c, 2e-3, 1e-5), label).toBeNull();
            else expect(Array.from(g), label).toEqual(Array.from(c));
          }
        }
      }
    }
  });
});

describe.skipIf(!gpu)('webgpu take, takeAdjoint, concat', () => {
  it('take along each axis with strided x and 2-D strided indices', async () => {
    const x = permutedSpec([4, 5, 3], [2, 0, 1], 'float32', 1);
    for (let axis = 0; axis < 3; axis++) {
      const size = x.shape[axis];
      const idxData = Int32Array.from({ length: 12 }, (_, i) => (i * 7) % size);
      const index: ViewSpec = { data: idxData, dtype: 'int32', shape: [3, 2], strides: [1, 3], offset: 1 };
      const outShape = [...x.shape.slice(0, axis), 3, 2, ...x.shape.slice(axis + 1)];
      const [g, c] = await both(gpu!, [x, index], (b, [xv, iv]) => b.take(xv, iv, axis), 'float32', sizeOf(outShape));
      expect(Array.from(g), `axis ${axis}`).toEqual(Array.from(c));
    }
    // out-of-range indices read 0 on the GPU
    const xv = viewOn(gpu!, { data: new Float32Array([1, 2, 3]), dtype: 'float32', shape: [3] });
    const iv = viewOn(gpu!, { data: new Int32Array([2, 3, -1, 0]), dtype: 'int32', shape: [4] });
    expect(Array.from(await gpu!.read(gpu!.take(xv, iv, 0), 'float32', 4))).toEqual([3, 0, 0, 1]);
  });

  it('takeAdjoint accumulates repeated indices deterministically, in ascending position order', async () => {
    const shape = [3, 7, 4];
    for (let axis = 0; axis < 3; axis++) {
      const R = shape[axis];
      const nI = 37;
      const idxData = Int32Array.from({ length: nI }, (_, i) => (i * i + 3 * i) % R);
      const index: ViewSpec = { data: idxData, dtype: 'int32', shape: [nI] };
      const srcShape = [...shape.slice(0, axis), nI, ...shape.slice(axis + 1)];
      const src = permutedSpec(srcShape, [2, 1, 0], 'float32', 11);
      const [g, c] = await both(gpu!, [index, src], (b, [iv, sv]) => b.takeAdjoint(shape, iv, sv, axis), 'float32', sizeOf(shape));
      // the cpu accumulates in doubles; the gpu sums float32 in ascending position order
      expect(mismatch(g, c, 1e-5, 1e-6), `axis ${axis}`).toBeNull();
      // ... and is deterministic: the same bits on every run
      const [g2] = await both(gpu!, [index, src], (b, [iv, sv]) => b.takeAdjoint(shape, iv, sv, axis), 'float32', sizeOf(shape));
      expect(Array.from(g2)).toEqual(Array.from(g));
      // equal to a serial float32 loop in ascending position order
      const nI2 = idxData.length;
      const outer = shape.slice(0, axis).reduce((n, d) => n * d, 1);
      const inner = shape.slice(axis + 1).reduce((n, d) => n * d, 1);
      const srcData = await cpu.read(cpu.copy(viewOn(cpu, src)), 'float32', sizeOf(srcShape));
      const serial = new Float32Array(sizeOf(shape));
      for (let o = 0; o < outer; o++)
        for (let j = 0; j < nI2; j++)
          for (let t = 0; t < inner; t++) {
            const at = (o * R + idxData[j]) * inner + t;
            serial[at] = Math.fround(serial[at] + srcData[(o * nI2 + j) * inner + t]);
          }
      expect(Array.from(g)).toEqual(Array.from(serial));
    }
    // 2-D index, int32 payload, and an index that is never hit
    const index: ViewSpec = { data: new Int32Array([4, 0, 4, 4, 1, 0]), dtype: 'int32', shape: [2, 3] };
    const src: ViewSpec = { data: values(12, 'int32', 3), dtype: 'int32', shape: [2, 3, 2] };
    const [g, c] = await both(gpu!, [index, src], (b, [iv, sv]) => b.takeAdjoint([6, 2], iv, sv, 0), 'int32', 12);
    expect(Array.from(g)).toEqual(Array.from(c));
  });

  it('concat of strided views along each axis, with an empty piece', async () => {
    for (let axis = 0; axis < 2; axis++) {
      const shapes =
        axis === 0
          ? [
              [2, 3],
              [0, 3],
              [4, 3],
            ]
          : [
              [3, 1],
              [3, 0],
              [3, 5],
            ];
      const specs: ViewSpec[] = shapes.map((s, i) => permutedSpec(s, [1, 0], 'float32', 20 + i));
      const outShape = [...shapes[0]];
      outShape[axis] = shapes.reduce((n, s) => n + s[axis], 0);
      const [g, c] = await both(gpu!, specs, (b, vs) => b.concat(vs, axis, outShape), 'float32', sizeOf(outShape));
      expect(Array.from(g), `axis ${axis}`).toEqual(Array.from(c));
    }
  });
});

describe.skipIf(!gpu)('webgpu softmax', () => {
  const hasSg = !!gpu && gpu.info.features.includes('subgroups') && gpu.info.wgslFeatures.includes('subgroup_id');
  /** Rows of `L` values with NaN, ±Infinity and ±1e30 planted in some of them (row-major [R, L]). */
  function specialRows(R: number, L: number, seed: number): Float32Array {
    const v = values(R * L, 'float32', seed, 4) as Float32Array;
    const inf = Number.POSITIVE_INFINITY;
    for (let j = 0; j < L; j++) {
      if (R > 1) v[L + j] = -inf; // row 1: only -Infinity → NaN
      if (R > 2 && (j % 256 === 3 || j % 1024 < 8)) v[2 * L + j] = -inf; // row 2: some -Infinity (whole threads)
    }
    if (R > 3) v[3 * L + (L >> 1)] = Number.NaN;
    if (R > 4) v[4 * L + L - 1] = inf;
    if (R > 5) {
      v[5 * L] = 1e30;
      v[5 * L + 1] = -1e30;
    }
    return v;
  }
  const cases: { label: string; spec: ViewSpec; axis: number }[] = [
    { label: 'serial [5,7] axis 1', spec: { data: values(35, 'float32', 1), dtype: 'float32', shape: [5, 7] }, axis: 1 },
    { label: 'serial [7,33] axis 0 (strided rows)', spec: permutedSpec([7, 33], [1, 0], 'float32', 2), axis: 0 },
    { label: 'serial special [6,9]', spec: { data: specialRows(6, 9, 3), dtype: 'float32', shape: [6, 9] }, axis: 1 },
    { label: 'register vec4 [6,1024]', spec: { data: specialRows(6, 1024, 4), dtype: 'float32', shape: [6, 1024] }, axis: 1 },
    {
      label: 'register vec4 offset 4 [3,36]',
      spec: { data: values(200, 'float32', 5), dtype: 'float32', shape: [3, 36], strides: [40, 1], offset: 4 },
      axis: 1,
    },
    {
      label: 'register scalar offset 2 [3,36]',
      spec: { data: values(200, 'float32', 6), dtype: 'float32', shape: [3, 36], strides: [40, 1], offset: 2 },
      axis: 1,
    },
    { label: 'register scalar [6,1001]', spec: { data: specialRows(6, 1001, 7), dtype: 'float32', shape: [6, 1001] }, axis: 1 },
    { label: 'register strided [40,50] axis 0', spec: permutedSpec([40, 50], [1, 0], 'float32', 8), axis: 0 },
    { label: 'register middle axis [3,100,2]', spec: { data: values(600, 'float32', 9), dtype: 'float32', shape: [3, 100, 2] }, axis: 1 },
    {
      label: 'register full vec4 [2,16384]',
      spec: { data: values(32768, 'float32', 10, 8), dtype: 'float32', shape: [2, 16384] },
      axis: 1,
    },
    { label: 'stream vec4 [6,16388]', spec: { data: specialRows(6, 16388, 11), dtype: 'float32', shape: [6, 16388] }, axis: 1 },
    { label: 'stream scalar [6,4099]', spec: { data: specialRows(6, 4099, 12), dtype: 'float32', shape: [6, 4099] }, axis: 1 },
    { label: 'size-1 rows [4,1]', spec: { data: values(4, 'float32', 13), dtype: 'float32', shape: [4, 1] }, axis: 1 },
    { label: 'scalar []', spec: { data: values(4, 'float32', 14), dtype: 'float32', shape: [], strides: [], offset: 2 }, axis: 0 },
    { label: 'empty [0,40]', spec: { data: values(4, 'float32', 15), dtype: 'float32', shape: [0, 40] }, axis: 1 },
  ];

  for (const sg of hasSg ? [true, false] : [false]) {
    it(`every path matches the cpu (${sg ? 'subgroup' : 'shared-memory'} reductions)`, async () => {
      for (const { label, spec, axis } of cases) {
        const n = sizeOf(spec.shape);
        const [g, c] = await both(
          gpu!,
          [spec],
          (b, [x]) => (b === gpu ? softmaxKernel(gpu.engine, x, axis, sg) : b.softmax(x, axis)),
          'float32',
          n,
        );
        expect(mismatch(g, c, 1e-9, 1e-5), label).toBeNull();
      }
    });
  }

  it('more than 65,535 workgroup rows (folded grid)', async () => {
    const R = 65600;
    const L = 34;
    const spec: ViewSpec = { data: values(R * L, 'float32', 16), dtype: 'float32', shape: [R, L] };
    const [g, c] = await both(gpu!, [spec], (b, [x]) => b.softmax(x, 1), 'float32', R * L);
    expect(mismatch(g, c, 1e-9, 1e-5)).toBeNull();
  });

  it('rejects float64 like the other kernels', () => {
    const storage = gpu!.upload(new Float32Array(1), 'float32');
    expect(() => gpu!.softmax({ storage, dtype: 'float64', shape: [1], strides: [1], offset: 0 }, 0)).toThrow(
      /float64 is only supported on the cpu backend/,
    );
    gpu!.free(storage);
  });
});
