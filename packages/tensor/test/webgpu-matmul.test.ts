import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { MATMUL_CONFIGS, setMatmulConfig, splitK } from '../src/backends/webgpu/kernels/matmul.js';
import { both, destroyTestWebGPU, mismatch, testWebGPU, type ViewSpec, values } from './util/webgpu.js';

const gpu = await testWebGPU();
// a cold lavapipe (LLVM) compile of one tiled matmul pipeline takes seconds; each load-path
// combination is its own pipeline, so these tests get generous timeouts
const SLOW = 400_000;
afterAll(destroyTestWebGPU);
afterEach(() => setMatmulConfig(null));

function contiguous(shape: number[]): number[] {
  const s: number[] = [];
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/** A [..., R, C] operand stored row-major, or stored transposed ([..., C, R]) and viewed back. */
function operand(batch: number[], R: number, C: number, transposed: boolean, seed: number, pad = 0): ViewSpec {
  const n = batch.reduce((a, b) => a * b, 1) * R * C;
  const data = values(n + pad, 'float32', seed, 1);
  if (!transposed)
    return {
      data,
      dtype: 'float32',
      shape: [...batch, R, C],
      strides: [...contiguous([...batch, R * C]).slice(0, -1), C, 1].slice(-batch.length - 2),
      offset: pad,
    };
  const st = contiguous([...batch, C, R]);
  const strides = [...st.slice(0, batch.length), 1, R];
  return { data, dtype: 'float32', shape: [...batch, R, C], strides, offset: pad };
}

async function check(a: ViewSpec, b: ViewSpec, label: string): Promise<void> {
  const r = a.shape.length;
  const M = a.shape[r - 2];
  const N = b.shape[r - 1];
  const batch = a.shape.slice(0, -2).reduce((x, y) => x * y, 1);
  const [g, c] = await both(gpu!, [a, b], (bk, [x, y]) => bk.matmul(x, y), 'float32', batch * M * N);
  const K = a.shape[r - 1];
  expect(mismatch(g, c, 1e-5 * Math.max(1, K), 1e-5), label).toBeNull();
}

describe.skipIf(!gpu)('webgpu matmul', () => {
  const shapes: [number, number, number][] = [
    [1, 1, 1],
    [1, 7, 1],
    [3, 5, 7],
    [2, 3, 4],
    [17, 33, 9],
    [8, 16, 12],
    [65, 31, 129],
    [64, 64, 64],
    [130, 70, 133],
  ];

  it(
    'odd and aligned sizes in all four transpose layouts (default tile choice)',
    async () => {
      for (const [M, K, N] of shapes) {
        for (const ta of [false, true]) {
          for (const tb of [false, true]) {
            await check(operand([], M, K, ta, M + K), operand([], K, N, tb, K + N + 1), `${M}x${K}x${N} ta=${ta} tb=${tb}`);
          }
        }
      }
    },
    SLOW,
  );

  it(
    'each tile config on vec4 (aligned) and scalar (odd) layouts, with partial tiles',
    async () => {
      // (a lavapipe compile of a tiled kernel takes seconds: one shape per load path)
      const plan: [string, [number, number, number], boolean, boolean][] = [
        ['large', [132, 36, 136], false, false],
        ['xlarge', [132, 36, 136], false, false],
        ['xlarge', [132, 36, 136], true, true],
        ['square128', [132, 36, 136], true, false],
        ['large', [132, 36, 136], true, false],
        ['large', [132, 36, 136], false, true],
        ['large', [132, 36, 136], true, true],
        ['large', [33, 17, 9], false, false],
        ['medium', [68, 20, 72], false, true],
        ['medium', [33, 17, 9], true, true],
        ['small', [36, 20, 40], true, false],
      ];
      for (const [name, [M, K, N], ta, tb] of plan) {
        setMatmulConfig(MATMUL_CONFIGS[name]);
        await check(operand([], M, K, ta, M + K), operand([], K, N, tb, K + N + 1), `${name} ${M}x${K}x${N} ta=${ta} tb=${tb}`);
      }
    },
    SLOW,
  );

  it(
    'default tile choice, batches, broadcast batch dims, offsets and generic strides',
    async () => {
      // batched [2,3] with b broadcast over the first batch dim (stride 0)
      const a = operand([2, 3], 9, 12, false, 1);
      const bBase = operand([3], 12, 8, true, 2);
      const b: ViewSpec = { ...bBase, shape: [2, 3, 12, 8], strides: [0, ...(bBase.strides ?? [])] };
      await check(a, b, 'batched broadcast');
      // views with element offsets (unaligned: scalar loads; aligned: vec4 loads)
      await check(operand([], 20, 24, false, 3, 1), operand([], 24, 16, false, 4, 3), 'unaligned offsets');
      await check(operand([], 20, 24, false, 3, 4), operand([], 24, 16, true, 4, 8), 'aligned offsets');
      // a strided slice: every other row and column of a [40, 50] matrix
      const big = values(2000, 'float32', 5, 1);
      const sliced: ViewSpec = { data: big, dtype: 'float32', shape: [20, 25], strides: [100, 2], offset: 1 };
      await check(sliced, operand([], 25, 11, false, 6), 'strided slice');
      // K = 0 gives zeros; M = 0 gives an empty result
      const [g] = await both(
        gpu!,
        [
          { data: new Float32Array(1), dtype: 'float32', shape: [3, 0] },
          { data: new Float32Array(1), dtype: 'float32', shape: [0, 2] },
        ],
        (bk, [x, y]) => bk.matmul(x, y),
        'float32',
        6,
      );
      expect(Array.from(g)).toEqual([0, 0, 0, 0, 0, 0]);
    },
    SLOW,
  );

  it(
    'a larger product with the default tile choice stays accurate',
    async () => {
      await check(operand([], 256, 100, false, 7), operand([], 100, 264, true, 8), '256x100x264 default config');
    },
    SLOW,
  );

  it(
    'split-K for long thin products (weight gradients): chunk products summed in order, transposed, batched and odd layouts',
    async () => {
      // dW = Xᵀ·dY: A is a transposed view, K the token count
      await check(operand([], 64, 8192, true, 9), operand([], 8192, 64, false, 10), 'split-K 64x8192x64 ta');
      await check(operand([], 65, 12288, true, 11), operand([], 12288, 67, true, 12), 'split-K 65x12288x67 scalar');
      await check(operand([2], 64, 4096, false, 13), operand([2], 4096, 72, false, 14), 'split-K batched');
    },
    SLOW,
  );
});

describe('split-K choice', () => {
  const SMEM = 49152;
  afterEach(() => setMatmulConfig(null));
  it('splits long K when the output gives too few workgroups, into power-of-two chunks of ≥ 1024 that divide K', () => {
    expect(splitK(768, 768, 32768, 1, SMEM)).toEqual({ S: 8, c: MATMUL_CONFIGS.xlarge });
    expect(splitK(768, 2048, 32768, 1, SMEM)).toEqual({ S: 4, c: MATMUL_CONFIGS.xlarge });
    expect(splitK(64, 64, 8192, 1, SMEM)).toEqual({ S: 8, c: MATMUL_CONFIGS.medium });
    expect(splitK(64, 64, 12288, 1, SMEM).S).toBe(8);
    expect(splitK(64, 4096, 4096, 2, SMEM).S).toBe(4);
    // short K, an odd K, enough workgroups, or a forced tile: no split
    expect(splitK(32768, 768, 768, 1, SMEM).S).toBe(1);
    expect(splitK(768, 768, 32767, 1, SMEM).S).toBe(1);
    expect(splitK(4096, 4096, 32768, 1, SMEM).S).toBe(1);
    setMatmulConfig(MATMUL_CONFIGS.large);
    expect(splitK(768, 768, 32768, 1, SMEM).S).toBe(1);
  });
});
