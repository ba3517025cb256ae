import { afterAll, describe, expect, it } from 'vitest';
import type { View } from '../src/backend.js';
import { initWebGPU } from '../src/backends/webgpu/device.js';
import { denseRange, packOperands, scaleExponent, splitKHigh } from '../src/backends/webgpu/kernels/matmul-sgmat.js';
import { tensorCoreSupport, withDawnFeatures } from '../src/backends/webgpu/tensor-cores.js';
import { FoxgateError } from '../src/errors.js';
import { tensor } from '../src/index.js';
import { matmul } from '../src/ops/index.js';
import { checkPrecision } from '../src/precision.js';
import { destroyTestWebGPU, mismatch, testWebGPU, values, viewOn } from './util/webgpu.js';

const gpu = await testWebGPU();
afterAll(destroyTestWebGPU);

/** IEEE half (as its 16 bits) to a number. */
function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return sign * f * 2 ** -24;
  if (e === 31) return f ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + f / 1024) * 2 ** (e - 15);
}

/** The element of packed row r, column c of batch bi, unscaled (0 in the padding). */
type Expected = (bi: number, r: number, c: number) => number;

/** A packed operand against its expected f32 values times 2^k, rounded to f16. */
async function checkPacked(
  g: NonNullable<typeof gpu>,
  packed: Parameters<typeof g.read>[0],
  B: number,
  rows: number,
  cols: number,
  expected: Expected,
  k: number,
): Promise<void> {
  const words = new Uint32Array(await g.read(packed, 'uint32', (B * rows * cols) / 2));
  let worst = 0;
  for (let bi = 0; bi < B; bi++)
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < cols; c++) {
        const i = (bi * rows + r) * cols + c;
        const h = (words[i >> 1] >>> (16 * (i & 1))) & 0xffff;
        const got = halfToNumber(h);
        const want = expected(bi, r, c) * 2 ** k;
        expect(Math.abs(want)).toBeLessThan(2 ** 15);
        if (want === 0) expect(got).toBe(0);
        else worst = Math.max(worst, Math.abs(got - want) / Math.abs(want));
      }
  // round to nearest f16: relative error ≤ 2^-11 (normal range)
  expect(worst).toBeLessThanOrEqual(2 ** -11);
  expect(worst).toBeGreaterThan(0);
}

describe('matmul precision option', () => {
  it('validates the precision value with one-line errors', () => {
    const a = tensor([
      [1, 2],
      [3, 4],
    ]);
    expect(() => matmul(a, a, { precision: 'fast' as never })).toThrow(FoxgateError);
    expect(() => matmul(a, a, { precision: 'fast' as never })).toThrow("matmul: opts.precision must be 'highest' or 'high', got 'fast'");
    expect(() => checkPrecision('initWebGPU', 'opts.precision', 3)).toThrow(
      "initWebGPU: opts.precision must be 'highest' or 'high', got 3",
    );
    expect(checkPrecision('f', 'p', undefined)).toBeUndefined();
    expect(checkPrecision('f', 'p', 'high')).toBe('high');
  });

  it('initWebGPU rejects a bad precision before touching a device', async () => {
    await expect(initWebGPU({ precision: 'medium' as never })).rejects.toThrow(
      "initWebGPU: opts.precision must be 'highest' or 'high', got 'medium'",
    );
    await expect(initWebGPU({ tensorCores: 'yes' as never })).rejects.toThrow('initWebGPU: opts.tensorCores must be a boolean, got yes');
  });

  it("the CPU backend computes 'high' products in full precision", async () => {
    const a = tensor([
      [1.0009765625, 3],
      [2, 4],
    ]);
    const b = tensor([
      [1.0009765625, 0],
      [0, 1],
    ]);
    // 1.0009765625² = 1.00195407867431640625 needs 21 bits: f16 operands would still give it,
    // but 1 + 2^-11 (not representable in f16) shows the product was not rounded to f16
    const c = tensor([[1 + 2 ** -11]]);
    expect(await matmul(a, b, { precision: 'high' }).toArray()).toEqual(await matmul(a, b).toArray());
    expect(await matmul(c, c, { precision: 'high' }).toArray()).toEqual([[(1 + 2 ** -11) ** 2]].map((r) => r.map(Math.fround)));
  });
});

describe('tensor-core helpers', () => {
  it('merges the Dawn toggles into one enable-dawn-features flag', () => {
    expect(withDawnFeatures([], ['allow_unsafe_apis', 'vulkan_enable_f16_on_nvidia'])).toEqual([
      'enable-dawn-features=allow_unsafe_apis,vulkan_enable_f16_on_nvidia',
    ]);
    expect(
      withDawnFeatures(['enable-dawn-features=disable_robustness', 'backend=vulkan'], ['allow_unsafe_apis', 'disable_robustness']),
    ).toEqual(['backend=vulkan', 'enable-dawn-features=disable_robustness,allow_unsafe_apis']);
  });

  it('says why tensor cores are unavailable', () => {
    const f16 = { componentType: 'f16', resultComponentType: 'f32', M: 16, N: 16, K: 16 };
    const all = ['shader-f16', 'subgroups', 'chromium-experimental-subgroup-matrix'];
    expect(tensorCoreSupport(all, [f16], 32, 32)).toEqual({ ok: true });
    expect(tensorCoreSupport(['subgroups'], [f16], 32, 32)).toEqual({ ok: false, reason: "the device has no 'shader-f16'" });
    expect(tensorCoreSupport(all, [{ ...f16, componentType: 'i8', resultComponentType: 'i32' }], 32, 32)).toEqual({
      ok: false,
      reason: 'the adapter lists no f16→f32 16x16x16 subgroup matrix',
    });
    expect(tensorCoreSupport(all, [f16], 16, 64).ok).toBe(false);
  });

  it('scales every max-abs into [2^14, 2^15) by an exact power of two', () => {
    expect(scaleExponent(1)).toBe(14);
    expect(scaleExponent(1.99)).toBe(14);
    expect(scaleExponent(65504)).toBe(-1);
    expect(scaleExponent(3e38)).toBe(14 - 127);
    expect(scaleExponent(1e-40)).toBe(126); // subnormal max: clamped
    expect(scaleExponent(0)).toBe(0);
    expect(scaleExponent(Number.POSITIVE_INFINITY)).toBe(0);
    for (const m of [1e6, 3.5, 1e-6, 123456789]) {
      const s = m * 2 ** scaleExponent(Math.fround(m));
      expect(s).toBeGreaterThanOrEqual(2 ** 14 * 0.999999);
      expect(s).toBeLessThan(2 ** 15);
    }
  });
});

describe.skipIf(!gpu)("webgpu 'high' precision", () => {
  it('falls back to the f32 kernel where the adapter has no f16 subgroup matrices', async () => {
    const g = gpu!;
    if (g.tensorCores) return; // hardware with tensor cores: covered by scripts/gpu/check-matmul-high.ts
    expect(g.info.tensorCores?.available).toBe(false);
    expect(typeof g.info.tensorCores?.reason).toBe('string');
    const M = 37;
    const K = 53;
    const N = 29;
    const av = values(M * K, 'float32', 3, 2);
    const bv = values(K * N, 'float32', 4, 2);
    const run = async (precision?: 'high' | 'highest') => {
      const a = viewOn(g, { data: av, dtype: 'float32', shape: [M, K] });
      const b = viewOn(g, { data: bv, dtype: 'float32', shape: [K, N] });
      const s = g.matmul(a, b, precision ? { precision } : undefined);
      const out = await g.read(s, 'float32', M * N);
      for (const x of [s, a.storage, b.storage]) g.free(x);
      return out;
    };
    const highest = await run('highest');
    expect(Array.from(await run('high'))).toEqual(Array.from(highest));
    g.setPrecision('high');
    try {
      expect(g.precision).toBe('high');
      expect(Array.from(await run())).toEqual(Array.from(highest));
    } finally {
      g.setPrecision('highest');
    }
    expect(() => g.setPrecision('low' as never)).toThrow("setPrecision: precision must be 'highest' or 'high', got 'low'");
    // f32 products: far below the f16 operand error (≈1e-3 of the terms)
    const ref = new Float64Array(M * N);
    for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) ref[m * N + n] += av[m * K + k] * bv[k * N + n];
    expect(mismatch(highest, ref, 1e-4, 1e-5)).toBeNull();
  });

  it('packs operands to scaled f16 tiles (max-abs, layouts, padding, batch broadcast)', async () => {
    const g = gpu!;
    const M = 19;
    const K = 21;
    const N = 10;
    const B = 2;
    // A [2, 19, 21] stored transposed per batch ([2][21][19]: M contiguous → layout 'w');
    // B [21, 10] broadcast over the batch, row-major (N contiguous → 'w')
    const aData = values(B * M * K, 'float32', 7, 1);
    aData[5] = -3000.5; // the max-abs of A (negative)
    const bData = values(K * N, 'float32', 8, 1).map((x) => x * 1e-5) as Float32Array;
    const a: View = { ...viewOn(g, { data: aData, dtype: 'float32', shape: [B, M, K] }), strides: [M * K, 1, M] };
    const b: View = { ...viewOn(g, { data: bData, dtype: 'float32', shape: [B, K, N] }), strides: [0, N, 1] };
    const tile = { BM: 16, BN: 16, BK: 16 };
    const p = packOperands(g.engine, a, b, tile);
    expect([p.aL, p.bL, p.Mp, p.Np, p.Kp]).toEqual(['w', 'w', 32, 16, 32]);
    const stats = new Uint32Array(await g.read(p.stats, 'uint32', 2));
    const f32 = new Float32Array(stats.buffer);
    let maxB = 0;
    for (const x of bData) maxB = Math.max(maxB, Math.abs(x));
    expect(f32[0]).toBe(3000.5);
    expect(f32[1]).toBe(maxB);
    const ka = scaleExponent(3000.5);
    const kb = scaleExponent(maxB);
    const check = (packed: typeof p.ap, rows: number, cols: number, expected: Expected, k: number) =>
      checkPacked(g, packed, B, rows, cols, expected, k);
    // A packed [b][Kp][Mp]: element (m, k) at row k, col m
    await check(p.ap, p.Kp, p.Mp, (bi, k, m) => (k < K && m < M ? aData[bi * M * K + k * M + m] : 0), ka);
    // B packed [b][Kp][Np]: the same B for both batches
    await check(p.bp, p.Kp, p.Np, (_bi, k, n) => (k < K && n < N ? bData[k * N + n] : 0), kb);
    for (const s of [p.ap, p.bp, p.stats, a.storage, b.storage]) g.free(s);
  });

  it('packs 4-aligned rows four at a time; max-abs reads a dense range flat, a strided view as strided', async () => {
    const g = gpu!;
    const [B, M, K, N, W] = [2, 16, 24, 12, 28];
    // A [2, 16, 24]: columns 4..27 of a [2, 16, 28] buffer (offset 4, row stride 28: not dense)
    const big = values(B * M * W, 'float32', 9, 1);
    const at = (bi: number, m: number, k: number) => big[bi * M * W + m * W + 4 + k];
    big[1 * M * W + 7 * W + 4 + 23] = 2000.25; // the max-abs of A, its last column
    big[3] = -9e6; // outside the view: not A's max-abs
    const bData = values(K * N, 'float32', 10, 1).map((x) => x * 1e-5) as Float32Array;
    bData[K * N - 1] = -2.5e-5; // B's max-abs, its last element (the flat loop's end)
    const a: View = { ...viewOn(g, { data: big, dtype: 'float32', shape: [B, M, K] }), strides: [M * W, W, 1], offset: 4 };
    const b: View = { ...viewOn(g, { data: bData, dtype: 'float32', shape: [B, K, N] }), strides: [0, N, 1] };
    g.startProfile({ detail: true });
    const p = packOperands(g.engine, a, b, { BM: 16, BN: 16, BK: 16 });
    const ran = (await g.stopProfile()).kernels.map((k) => k.kernel).sort();
    expect(ran).toEqual([
      'fill',
      'matmul_high_maxabs 2×16×24 rs 28 cs 1',
      'matmul_high_maxabs dense 288 vec4',
      'matmul_high_pack 2×16×24 rs 28 quads',
      'matmul_high_pack 2×24×12 rs 12 quads',
    ]);
    expect([p.aL, p.bL, p.Mp, p.Np, p.Kp]).toEqual(['k', 'w', 16, 16, 32]);
    const f32 = new Float32Array(new Uint32Array(await g.read(p.stats, 'uint32', 2)).buffer);
    expect([f32[0], f32[1]]).toEqual([2000.25, Math.fround(2.5e-5)]);
    // A packed [b][Mp][Kp], B [b][Kp][Np]
    await checkPacked(g, p.ap, B, p.Mp, p.Kp, (bi, m, k) => (k < K ? at(bi, m, k) : 0), scaleExponent(2000.25));
    await checkPacked(g, p.bp, B, p.Kp, p.Np, (_bi, k, n) => (k < K && n < N ? bData[k * N + n] : 0), scaleExponent(f32[1]));
    for (const s of [p.ap, p.bp, p.stats, a.storage, b.storage]) g.free(s);
  });

  it("split-K of 'high' products: long thin ones into power-of-two chunks on the largest tile, the rest whole", () => {
    const plan = (M: number, N: number, K: number, batches: number, hopper: boolean) => {
      const r = splitKHigh(M, N, K, batches, hopper);
      return [r.S, `${r.c.BM}x${r.c.BN}`];
    };
    // a weight gradient 768×768 over 32768 tokens: 144 workgroups of 64×64; 16 chunks of 18 on 128×256
    expect(plan(768, 768, 32768, 1, true)).toEqual([16, '128x256']);
    expect(plan(768, 768, 32768, 1, false)).toEqual([8, '128x128']);
    expect(plan(4096, 768, 32768, 1, true)).toEqual([4, '128x256']);
    // chunks stay ≥ 1024 long and divide K
    expect(plan(256, 512, 8192, 1, true)).toEqual([8, '128x256']);
    expect(plan(768, 768, 32767, 1, true)).toEqual([1, '64x64']);
    expect(plan(768, 768, 2048, 1, true)).toEqual([1, '64x64']);
    expect(plan(4096, 4096, 4096, 1, true)).toEqual([1, '128x256']);
  });

  it('denseRange: a permutation of dense dims (broadcast dims dropped) is one range; a strided view is not', () => {
    const op = (R: number, C: number, rs: number, cs: number, batchShape: number[] = [], batchStrides: number[] = []) => ({
      R,
      C,
      rs,
      cs,
      offset: 8,
      batchShape,
      batchStrides,
    });
    expect(denseRange(op(4, 3, 3, 1))).toEqual({ start: 8, count: 12 });
    expect(denseRange(op(4, 3, 1, 4, [2], [12]))).toEqual({ start: 8, count: 24 });
    expect(denseRange(op(4, 3, 3, 1, [5], [0]))).toEqual({ start: 8, count: 12 });
    expect(denseRange(op(4, 3, 4, 1))).toBeNull();
    expect(denseRange(op(4, 3, 3, 1, [2], [16]))).toBeNull();
    expect(denseRange(op(1, 3, 0, 2))).toBeNull();
  });
});
