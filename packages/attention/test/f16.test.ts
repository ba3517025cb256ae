import { type Backend, tensor, type WebGPUBackend } from '@foxgate/tensor';
import { destroyTestWebGPU, testWebGPU, throwsNaming } from '@foxgate/testing';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { FOX_F16_DEFAULT, type FoxF16Config, foxF16Config, setFoxF16 } from '../src/dev.js';
import { f16ScaleExponent, f16SmemBytes, foxForwardF16WGSL } from '../src/forgetting/wgsl-f16.js';
import { forgettingAttention } from '../src/index.js';
import { ALL_CLOSE, compareResults, type FoxProblem, problem, runFox } from './util/fox.js';

/**
 * Precision 'high' of forgetting attention (f16 products on the tensor cores, `wgsl-f16.ts`).
 * Software adapters have no subgroup matrices: there the 'high' route must fall back to the f32
 * kernels, and the f16 kernel runs in its plain-WGSL emulation (`emulate: true`, which needs
 * `shader-f16`), so that tiling, masks, ACP, the lazy rescaling and the range scaling are
 * checked against float64 in CI. The hardware kernel itself is checked by
 * scripts/gpu/check-attention-f16.ts.
 */
const gpu = await testWebGPU();
afterAll(destroyTestWebGPU);
afterEach(() => {
  setFoxF16(null);
  gpu?.setPrecision('highest');
});
const f16 = gpu?.features.has('shader-f16') === true;

/** f16 operands (11 bits) in both products: errors ≈ 1e-3 of the values' scale (f32 kernels: 1e-5). */
const ATOL = 6e-3;
const RTOL = 6e-3;

async function runHigh(g: WebGPUBackend, p: FoxProblem, cfg: FoxF16Config | null, opts: Parameters<typeof runFox>[3]) {
  g.setPrecision('high');
  setFoxF16(cfg);
  try {
    return await runFox(p, g as Backend, 'float32', opts);
  } finally {
    g.setPrecision('highest');
    setFoxF16(null);
  }
}

describe.skipIf(!gpu)('precision high on an adapter without subgroup matrices', () => {
  it('falls back to the f32 kernels: the same bits as precision highest', async () => {
    const g = gpu as WebGPUBackend;
    expect(g.tensorCores).toBe(false);
    g.setPrecision('high');
    expect(foxF16Config(g, 64, null)).toBeNull();
    g.setPrecision('highest');
    const p = problem(1, 70, 70, 2, 16, 3, [0, 5]);
    const high = await runHigh(g, p, null, { gated: true });
    const highest = await runFox(p, g as Backend, 'float32', { gated: true });
    expect(high).toEqual(highest);
  });

  it('precision high alone keeps the f32 kernels here: no tensor cores', () => {
    const g = gpu as WebGPUBackend;
    g.setPrecision('high');
    for (const D of [16, 32, 64]) expect(foxF16Config(g, D, null)).toBeNull();
  });

  it('takes no route at precision highest, under a sliding window or at other head dims', () => {
    const g = gpu as WebGPUBackend;
    setFoxF16({ bk: 16, sg: 1, emulate: true });
    expect(foxF16Config(g, 16, null)).toBeNull();
    g.setPrecision('high');
    expect(foxF16Config(g, 16, 32)).toBeNull();
    expect(foxF16Config(g, 24, null)).toBeNull();
    expect(foxF16Config(g, 128, null)).toBeNull();
    if (f16) expect(foxF16Config(g, 16, null)).toEqual({ bk: 16, sg: 1, emulate: true });
  });
});

// emulated f16 kernel against the fused float64 CPU kernel (forward and the f32 backward that
// reads its o and lse2); configurations small enough for lavapipe's 32 KiB of workgroup memory
const cases: [string, FoxProblem, FoxF16Config, Parameters<typeof runFox>[3]][] = [
  // two subgroups: rows whose diagonal tile comes later than the workgroup's first
  ['gated, 2 subgroups', problem(1, 70, 70, 1, 16, 11, [-3, 3]), { bk: 16, sg: 2, emulate: true }, { gated: true }],
  // Tq < Tk, odd lengths, two Q chunks and two passes through the scratch (D = 32, bk = 16)
  [
    'gated ACP, Tq < Tk',
    problem(2, 133, 150, 2, 32, 12, [-3, 1]),
    { bk: 16, sg: 1, emulate: true },
    { gated: true, acp: true, stats: true },
  ],
  // 128 query rows per workgroup: the two 64-row ACP blocks prune differently
  [
    'gated ACP, 4 subgroups',
    problem(1, 300, 300, 1, 16, 13, [-3, 1]),
    { bk: 16, sg: 4, emulate: true },
    { gated: true, acp: true, stats: true },
  ],
  // O accumulated in lanes, pack2x16float conversions, separate Q/K/V/P arrays; D = 48 (Q in 16-dim chunks)
  [
    'softmax, lanes + pack + split, D = 48',
    problem(1, 90, 120, 1, 48, 17, [0, 5], 1),
    { bk: 16, sg: 1, emulate: true, oacc: 'lanes', pack: true, split: true },
    { gated: false },
  ],
  // the next key tile prefetched into registers, ACP bounds, Tq < Tk (BK = 64 keys for 32 invocations: two Λ and eight K/V units each)
  [
    'gated ACP, prefetch, Tq < Tk',
    problem(1, 133, 150, 1, 16, 18, [-3, 1]),
    { bk: 64, sg: 1, emulate: true, prefetch: true },
    { gated: true, acp: true, stats: true },
  ],
  [
    'softmax, prefetch, 4 subgroups',
    problem(1, 130, 130, 2, 16, 14, [0, 5], 2),
    { bk: 16, sg: 4, emulate: true, prefetch: true, tau: 0 },
    { gated: false },
  ],
  // tau = 0: the output is rescaled whenever a row's maximum grows
  [
    'softmax, rescaled at every new maximum',
    problem(1, 130, 130, 2, 16, 14, [0, 5], 2),
    { bk: 16, sg: 4, emulate: true, tau: 0 },
    { gated: false },
  ],
];

describe.skipIf(!f16)('the f16 kernel, emulated', () => {
  it.each(cases)('%s matches float64', async (_name, p, cfg, opts) => {
    const want = await runFox(p, 'cpu', 'float64', opts);
    const got = await runHigh(gpu as WebGPUBackend, p, cfg, opts);
    expect(compareResults(got, want, ATOL, RTOL)).toEqual(ALL_CLOSE);
    if (opts?.stats) expect(got.fraction).toBe(want.fraction);
    // and it is not the f32 kernel: f16 rounding shows
    const f32 = await runFox(p, gpu as Backend, 'float32', opts);
    expect(compareResults(got, f32, 1e-5, 1e-5).o).not.toBeNull();
  });

  it('scales operands outside the f16 range (|v| up to 1e6, q·1e5 with k·1e-5, tiny v) instead of overflowing', async () => {
    const base = problem(1, 40, 40, 1, 16, 15, [0, 5]);
    for (const [sq, sk, sv] of [
      [1e5, 1e-5, 1e6],
      [1, 1, 1e-6],
    ]) {
      const p = { ...base, q: base.q.map((x) => x * sq), k: base.k.map((x) => x * sk), v: base.v.map((x) => x * sv) };
      const want = await runFox(p, 'cpu', 'float64', { gated: true });
      const got = await runHigh(gpu as WebGPUBackend, p, { bk: 16, sg: 2, emulate: true }, { gated: true });
      expect(got.o.every(Number.isFinite)).toBe(true);
      expect(compareResults(got, want, ATOL * sv, RTOL).o).toBeNull();
    }
  });

  it('a forward without gradients writes only o (lse2 for the backward stays internal)', async () => {
    const g = gpu as WebGPUBackend;
    const p = problem(1, 33, 33, 1, 16, 16, [0, 5]);
    const t = (a: Float64Array, s: number[]) => tensor(Float32Array.from(a), s, { backend: g });
    const [q, k, v, f] = [t(p.q, [1, 33, 1, 16]), t(p.k, [1, 33, 1, 16]), t(p.v, [1, 33, 1, 16]), t(p.logF, [1, 33, 1])];
    g.setPrecision('high');
    setFoxF16({ bk: 16, sg: 1, emulate: true });
    const o = forgettingAttention(q, k, v, f);
    const want = await runFox(p, 'cpu', 'float64', { gated: true });
    const got = Float64Array.from(await o.data());
    expect(compareResults({ ...want, o: got }, want, ATOL, RTOL).o).toBeNull();
    for (const x of [q, k, v, f, o]) x.dispose();
  });
});

describe('f16 configuration and scaling', () => {
  it('setFoxF16 rejects unknown keys and values outside the kernel', () => {
    throwsNaming(() => setFoxF16({ bk: 48, sg: 4 }), 'setFoxF16', 'bk');
    throwsNaming(() => setFoxF16({ bk: 32, sg: 3 }), 'setFoxF16', 'sg');
    throwsNaming(() => setFoxF16({ bk: 32, sg: 4, tau: 16 }), 'setFoxF16', 'tau');
    throwsNaming(() => setFoxF16({ bk: 32, sg: 4, wide: true } as unknown as FoxF16Config), 'setFoxF16', "unknown key 'wide'");
  });

  it('the scale exponent puts max|x| in [2^14, 2^15) and leaves 0, Inf and NaN alone', () => {
    for (const m of [1, 0.75, 65504, 1e6, 3e-30, 1e38, 2 ** -140]) {
      const e = f16ScaleExponent(m);
      const s = Math.fround(m) * 2 ** e;
      if (m > 2 ** -112) {
        expect(s).toBeGreaterThanOrEqual(2 ** 14);
        expect(s).toBeLessThan(2 ** 15);
      } else expect(e).toBe(126);
    }
    expect([0, Number.POSITIVE_INFINITY, Number.NaN].map(f16ScaleExponent)).toEqual([0, 0, 0]);
  });

  it('the hardware kernel uses the subgroup-matrix builtins in their current spelling', () => {
    const code = foxForwardF16WGSL({ D: 64, gated: true, acp: true }, { bk: 16, sg: 4 });
    expect(code).toContain('enable chromium_experimental_subgroup_matrix;');
    expect(code).toMatch(/subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>, col_major>\(&Hs, /);
    expect(code).toContain('subgroupMatrixStore<row_major>(&Sf, ');
    expect(code).toContain('workgroupUniformLoad(&flag[0])');
    expect(code).not.toMatch(/subgroupMatrixLoad<[^>]+>\([^)]*, (true|false), /);
  });

  // on the H200 every earlier kernel computed wrong scores while a lone 4-byte `flag: u32` sat
  // among the workgroup variables (2026-12-02): keep each one a whole number of 16-byte units,
  // so that whatever order the driver lays them out in, the matrix loads stay 16-byte aligned
  it('every workgroup variable is a multiple of 16 bytes', () => {
    const bytes: Record<string, number> = { f16: 2, f32: 4, u32: 4 };
    for (const split of [false, true])
      for (const emulate of [false, true])
        for (const [D, bk, sg] of [
          [64, 16, 4],
          [48, 32, 2],
          [16, 64, 1],
        ]) {
          const code = foxForwardF16WGSL({ D, gated: true, acp: true }, { bk, sg, split, emulate });
          const vars = [...code.matchAll(/var<workgroup> (\w+): ([^;]+);/g)];
          expect(vars.length).toBeGreaterThan(3);
          for (const [, name, type] of vars) {
            const m = /^array<(f16|f32|u32), (\d+)>$/.exec(type);
            expect(m, `${name}: ${type}`).not.toBeNull();
            expect((bytes[m![1]] * Number(m![2])) % 16, `${name}: ${type}`).toBe(0);
          }
        }
  });

  it('Q is resident: written once before its matrix loads, never inside the key loop', () => {
    for (const split of [false, true]) {
      const code = foxForwardF16WGSL({ D: 64, gated: true, acp: true }, { bk: 16, sg: 4, split });
      const loop = code.indexOf('for (var kt = ktEnd');
      const writes = [...code.matchAll(/\bQs\[[^\]]+\] = /g)].map((m) => m.index ?? 0);
      const firstLoad = code.indexOf('(&Qs, ');
      expect(writes.length).toBeGreaterThan(0);
      expect(Math.max(...writes)).toBeLessThan(firstLoad);
      expect(firstLoad).toBeLessThan(loop);
      expect(code.slice(loop)).not.toContain('&Qs');
    }
  });
});

describe('the f16 route on an adapter with tensor cores (a stand-in backend)', () => {
  const stub = (precision: 'high' | 'highest', smem = 49152) =>
    ({
      precision,
      tensorCores: true,
      features: new Set(['shader-f16']),
      device: { limits: { maxStorageBuffersPerShaderStage: 8, maxComputeWorkgroupStorageSize: smem } },
    }) as unknown as WebGPUBackend;

  it("is on by default under 'high' at the head dims the kernel takes, off under 'highest' and windows", () => {
    for (const D of [16, 32, 48, 64]) expect(foxF16Config(stub('high'), D, null)).toEqual(FOX_F16_DEFAULT);
    for (const D of [8, 24, 80, 128]) expect(foxF16Config(stub('high'), D, null)).toBeNull();
    expect(foxF16Config(stub('highest'), 64, null)).toBeNull();
    expect(foxF16Config(stub('high'), 64, 128)).toBeNull();
  });

  it('setFoxF16(false) turns it off, null restores the default, a configuration overrides it', () => {
    setFoxF16(false);
    expect(foxF16Config(stub('high'), 64, null)).toBeNull();
    setFoxF16({ bk: 32, sg: 2 });
    expect(foxF16Config(stub('high'), 64, null)).toEqual({ bk: 32, sg: 2 });
    setFoxF16(null);
    expect(foxF16Config(stub('high'), 64, null)).toEqual(FOX_F16_DEFAULT);
  });

  it('the default falls back to f32 on an adapter with too little workgroup memory; an explicit configuration says why', () => {
    expect(foxF16Config(stub('high', 16384), 64, null)).toBeNull();
    setFoxF16({ bk: 16, sg: 4 });
    throwsNaming(() => foxF16Config(stub('high', 16384), 64, null), 'forgettingAttention', 'workgroup memory');
  });

  it("qstage 'shared' stages Q through the K/V/P array in chunks and needs about half the workgroup memory", () => {
    const shared = foxForwardF16WGSL({ D: 64, gated: true, acp: true }, FOX_F16_DEFAULT);
    expect(shared).not.toContain('var<workgroup> Qs');
    expect(shared).toMatch(/ql1_3 = subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>, row_major>\(&Hs, /);
    expect(f16SmemBytes(64, FOX_F16_DEFAULT)).toBeLessThan(0.6 * f16SmemBytes(64, { ...FOX_F16_DEFAULT, qstage: 'resident' }));
  });
});
