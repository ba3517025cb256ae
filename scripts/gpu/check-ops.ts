/*
 * Primitive-by-primitive check of the WebGPU backend against the CPU backend, for hardware
 * adapters (the tests run on lavapipe, whose kernels are the software variants: no unrolling,
 * runtime head dims). Bundled by scripts/gpu/build.sh; see scripts/gpu/check.ts.
 */

import { MATMUL_CONFIGS, type MatmulConfig, setMatmulConfig } from '../../packages/tensor/src/dev.js';
import type { DType } from '../../packages/tensor/src/dtype.js';
import { BINARY_OPS, initWebGPU, philoxRandom, UNARY_OPS } from '../../packages/tensor/src/index.js';
import { sumAccuracyData } from '../../packages/tensor/test/util/accuracy.js';
import { both, mismatch, permutedSpec, type ViewSpec, values } from '../../packages/tensor/test/util/webgpu.js';

/** Every primitive on the GPU against the CPU backend; returns the failures. */
export async function checkOps(): Promise<{ name: string; ok: boolean; msg?: string }[]> {
  const gpu = await initWebGPU();
  console.log('device:', JSON.stringify({ ...gpu.info, adapterFeatures: undefined }));
  const results: { name: string; ok: boolean; msg?: string }[] = [];
  const rec = (name: string, msg: string | null) => {
    results.push({ name, ok: msg === null, msg: msg ?? undefined });
    if (msg) console.log('FAIL', name, msg);
  };
  const tryCase = async (name: string, f: () => Promise<string | null>) => {
    try {
      rec(name, await f());
    } catch (e) {
      rec(name, `threw ${(e as Error).message}`);
    }
  };
  const f32 = (shape: number[], seed: number, pos = false): ViewSpec => {
    const n = shape.reduce((a, b) => a * b, 1);
    const d = values(n, 'float32', seed);
    return { data: pos ? (d.map((v) => Math.abs(v) + 0.01) as Float32Array) : d, dtype: 'float32', shape };
  };
  for (const op of UNARY_OPS) {
    if (op === 'not') continue;
    const pos = ['log', 'sqrt', 'rsqrt'].includes(op);
    for (const spec of [
      f32([1003], 1, pos),
      {
        ...permutedSpec([37, 29], [1, 0], 'float32', 2),
        ...(pos ? { data: permutedSpec([37, 29], [1, 0], 'float32', 2).data.map((v) => Math.abs(v) + 0.01) as Float32Array } : {}),
      },
    ]) {
      await tryCase(`unary ${op} ${spec.shape}`, async () => {
        const [g, c] = await both(
          gpu,
          [spec],
          (b, [x]) => b.unary(op, x, 'float32'),
          'float32',
          spec.shape.reduce((a, b) => a * b, 1),
        );
        return mismatch(g, c, 1e-5, op === 'sin' || op === 'cos' || op === 'exp' || op === 'tanh' ? 1e-4 : 1e-5);
      });
    }
  }
  for (const op of BINARY_OPS) {
    if (op === 'and' || op === 'or') continue;
    await tryCase(`binary ${op}`, async () => {
      const shape = [30, 40, 50];
      const a: ViewSpec = { data: values(1500, 'float32', 3), dtype: 'float32', shape, strides: [50, 0, 1] };
      const b = permutedSpec(shape, [2, 1, 0], 'float32', 4);
      const cmp = ['lt', 'le', 'gt', 'ge', 'eq', 'ne'].includes(op);
      const [g, c] = await both(
        gpu,
        [a, b],
        (bk, [x, y]) => bk.binary(op, x, y, shape, cmp ? 'bool' : 'float32'),
        cmp ? 'bool' : 'float32',
        60000,
      );
      return mismatch(g, c, 1e-5, 1e-4);
    });
  }
  for (const op of ['sub', 'div'] as const) {
    await tryCase(`binary ${op} row-broadcast vec4`, async () => {
      const shape = [512, 1000];
      const x = f32(shape, 21);
      const m: ViewSpec = { data: values(512, 'float32', 22), dtype: 'float32', shape, strides: [1, 0] };
      const [g, c] = await both(gpu, [x, m], (bk, [a, b]) => bk.binary(op, a, b, shape, 'float32'), 'float32', 512000);
      return mismatch(g, c, 1e-5, 1e-5);
    });
  }
  const redCases: [string, ViewSpec, number[]][] = [
    ['[3,100000] ax1', f32([3, 100000], 5), [1]],
    ['[100000,3] ax0', f32([100000, 3], 6), [0]],
    ['[64,4096] ax1', f32([64, 4096], 7), [1]],
    ['[4096,64] ax0', f32([4096, 64], 8), [0]],
    ['[16,32,33] ax0,2', f32([16, 32, 33], 9), [0, 2]],
  ];
  for (const [label, spec, axes] of redCases) {
    for (const op of ['sum', 'max', 'min', 'argmax'] as const) {
      if (op === 'argmax' && axes.length > 1) continue;
      await tryCase(`reduce ${op} ${label}`, async () => {
        const out = spec.shape.filter((_, d) => !axes.includes(d)).reduce((a, b) => a * b, 1);
        const [g, c] = await both(gpu, [spec], (b, [x]) => b.reduce(op, x, axes), op === 'argmax' ? 'int32' : 'float32', out);
        return mismatch(g, c, 1e-3, 1e-5);
      });
    }
  }
  for (const dtype of ['int32', 'uint32'] as DType[]) {
    await tryCase(`reduce sum ${dtype}`, async () => {
      const spec: ViewSpec = { data: values(300000, dtype, 3, 1e6), dtype, shape: [3, 100000] };
      const [g, c] = await both(gpu, [spec], (b, [x]) => b.reduce('sum', x, [1]), dtype, 3);
      return mismatch(g, c, 0, 0);
    });
  }
  await tryCase('sum 1e6 accuracy', async () => {
    const n = 1_000_000;
    const { data, exact } = sumAccuracyData(n);
    const [g] = await both(gpu, [{ data, dtype: 'float32', shape: [n] }], (b, [x]) => b.reduce('sum', x, [0]), 'float32', 1);
    const rel = Math.abs(g[0] - exact) / exact;
    return rel < 1e-5 ? null : `rel ${rel}`;
  });
  for (const [label, spec, axis] of [
    ['[8,5000] ax1', f32([8, 5000], 10), 1],
    ['[5000,8] ax0', f32([5000, 8], 11), 0],
    ['[100,50] ax1', f32([100, 50], 12), 1],
  ] as [string, ViewSpec, number][]) {
    for (const reverse of [false, true]) {
      await tryCase(`cumsum ${label} rev=${reverse}`, async () => {
        const n = spec.shape.reduce((a, b) => a * b, 1);
        const [g, c] = await both(gpu, [spec], (b, [x]) => b.cumsum(x, axis, reverse), 'float32', n);
        return mismatch(g, c, 5e-3, 1e-4);
      });
    }
  }
  // softmax: serial rows, register path (vec4 / scalar), streaming path, strided axis, special values
  const special = (R: number, L: number, seed: number): ViewSpec => {
    const spec = f32([R, L], seed);
    const d = spec.data as Float32Array;
    for (let j = 0; j < L; j++) {
      d[L + j] = Number.NEGATIVE_INFINITY;
      if (j % 256 === 3) d[2 * L + j] = Number.NEGATIVE_INFINITY;
    }
    d[3 * L + (L >> 1)] = Number.NaN;
    d[4 * L + 1] = Number.POSITIVE_INFINITY;
    d[5 * L] = 1e30;
    return spec;
  };
  for (const [label, spec, axis] of [
    ['[1000,20] ax1', f32([1000, 20], 20), 1],
    ['[64,4096] ax1', f32([64, 4096], 21), 1],
    ['[32,16384] ax1', f32([32, 16384], 22), 1],
    ['[16,3001] ax1', f32([16, 3001], 23), 1],
    ['[8,40000] ax1', f32([8, 40000], 24), 1],
    ['[8,40001] ax1', f32([8, 40001], 25), 1],
    ['[300,200] ax0', f32([300, 200], 26), 0],
    ['[70000,40] ax1', f32([70000, 40], 27), 1],
    ['special [6,9] ax1', special(6, 9, 28), 1],
    ['special [6,16384] ax1', special(6, 16384, 29), 1],
    ['special [6,40000] ax1', special(6, 40000, 30), 1],
  ] as [string, ViewSpec, number][]) {
    await tryCase(`softmax ${label}`, async () => {
      const n = spec.shape.reduce((a, b) => a * b, 1);
      const [g, c] = await both(gpu, [spec], (b, [x]) => b.softmax(x, axis), 'float32', n);
      return mismatch(g, c, 1e-9, 1e-5);
    });
  }
  const cfgs: [string, MatmulConfig | null][] = [['auto', null], ...Object.entries(MATMUL_CONFIGS)];
  for (const [name, cfg] of cfgs) {
    for (const [M, K, N] of [
      [257, 129, 263],
      [256, 128, 264],
      [1, 64, 1],
    ]) {
      for (const ta of [false, true]) {
        for (const tb of [false, true]) {
          await tryCase(`matmul ${name} ${M}x${K}x${N} ta=${ta} tb=${tb}`, async () => {
            setMatmulConfig(cfg);
            const mk = (R: number, C: number, t: boolean, seed: number): ViewSpec =>
              t ? permutedSpec([R, C], [1, 0], 'float32', seed) : f32([R, C], seed);
            const [g, c] = await both(gpu, [mk(M, K, ta, 1), mk(K, N, tb, 2)], (b, [x, y]) => b.matmul(x, y), 'float32', M * N);
            setMatmulConfig(null);
            return mismatch(g, c, 1e-4 * K, 1e-4);
          });
        }
      }
    }
  }
  for (const kind of ['bits', 'uniform', 'normal'] as const) {
    await tryCase(`random ${kind}`, async () => {
      const dtype = kind === 'bits' ? 'uint32' : 'float32';
      const n = 100003;
      const s = gpu.random(kind, [0xdeadbeef, 12345], n, dtype);
      const g = await gpu.read(s, dtype, n);
      gpu.free(s);
      const w = philoxRandom(kind, [0xdeadbeef, 12345], n, dtype);
      const gb = new Uint32Array(g.buffer);
      const wb = new Uint32Array(w.buffer);
      for (let i = 0; i < n; i++) if (gb[i] !== wb[i]) return `element ${i}: ${gb[i]} vs ${wb[i]}`;
      return null;
    });
  }
  await tryCase('takeAdjoint [1000,64] nI=5000', async () => {
    const idx = Int32Array.from({ length: 5000 }, (_, i) => (i * i) % 1000);
    const src = f32([5000, 64], 13);
    const [g, c] = await both(
      gpu,
      [{ data: idx, dtype: 'int32', shape: [5000] }, src],
      (b, [iv, sv]) => b.takeAdjoint([1000, 64], iv, sv, 0),
      'float32',
      64000,
    );
    return mismatch(g, c, 1e-5, 1e-5);
  });
  await tryCase('take [1000,64] idx [77]', async () => {
    const idx = Int32Array.from({ length: 77 }, (_, i) => (i * 13) % 1000);
    const [g, c] = await both(
      gpu,
      [f32([1000, 64], 14), { data: idx, dtype: 'int32', shape: [77] }],
      (b, [xv, iv]) => b.take(xv, iv, 0),
      'float32',
      77 * 64,
    );
    return mismatch(g, c, 0, 0);
  });
  await gpu.destroy();
  return results;
}
