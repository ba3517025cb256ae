import type { Backend, WebGPUBackend } from '@foxgate/tensor';
import { destroyTestWebGPU, testWebGPU, throwsNaming } from '@foxgate/testing';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { FOX_F16_BWD_DEFAULT, type FoxF16BwdConfig, foxF16BwdConfig, setFoxF16, setFoxF16Bwd } from '../src/dev.js';
import { f16BwdSmemBytes, foxBwdF16WGSL } from '../src/forgetting/wgsl-f16-bwd.js';
import { type FoxProblem, type FoxResult, normwiseErrors, problem, runFox } from './util/fox.js';

/**
 * The backward of forgetting attention at precision 'high' (f16 products on the tensor cores,
 * `wgsl-f16-bwd.ts`), in its plain-WGSL emulation on lavapipe (no subgroup matrices there):
 * gradients against the fused float64 CPU kernel, norm-wise (max |got − want| / max |want|), with
 * the f32 forward (`setFoxF16(false)`) so that only the backward's f16 rounding shows. The
 * hardware kernels are checked by scripts/gpu/check-attention-f16.ts (FOXGATE_F16_BWD=1).
 */
const gpu = await testWebGPU();
afterAll(destroyTestWebGPU);
afterEach(() => {
  setFoxF16Bwd(null);
  setFoxF16(null);
  gpu?.setPrecision('highest');
});
const f16 = gpu?.features.has('shader-f16') === true;

/** Norm-wise relative errors of the gradients. */
function errors(got: FoxResult, want: FoxResult): Record<string, number> {
  const { dq, dk, dv, dlogF } = normwiseErrors(got, want);
  return { dq, dk, dv, dlogF };
}

const TOL = 1e-2;

async function runHighBwd(g: WebGPUBackend, p: FoxProblem, cfg: FoxF16BwdConfig, opts: Parameters<typeof runFox>[3]) {
  g.setPrecision('high');
  setFoxF16(false);
  setFoxF16Bwd(cfg);
  try {
    return await runFox(p, g as Backend, 'float32', opts);
  } finally {
    g.setPrecision('highest');
    setFoxF16Bwd(null);
    setFoxF16(null);
  }
}

const E = (c: Partial<FoxF16BwdConfig> = {}): FoxF16BwdConfig => ({ kvSg: 1, bq: 16, qSg: 1, bk: 16, emulate: true, ...c });

const cases: [string, FoxProblem, FoxF16BwdConfig, Parameters<typeof runFox>[3]][] = [
  ['gated, odd length, D = 16', problem(1, 37, 37, 1, 16, 21, [-3, 3]), E(), { gated: true }],
  // Tq < Tk, odd lengths, two heads and batches, 2 subgroups per workgroup
  ['gated ACP, Tq < Tk, D = 32', problem(2, 133, 150, 2, 32, 22, [-3, 1]), E({ kvSg: 2, qSg: 2 }), { gated: true, acp: true, stats: true }],
  // 128 keys / queries per workgroup: two 64-blocks of ACP bounds in one workgroup
  [
    'gated ACP, 4 subgroups, D = 16',
    problem(1, 300, 300, 1, 16, 23, [-3, 1]),
    E({ kvSg: 4, qSg: 4 }),
    { gated: true, acp: true, stats: true },
  ],
  // 32-query tiles in the dK/dV kernel, D = 48 (three 16-dim blocks), Tq < Tk, larger scores
  ['softmax, 32-query tiles, D = 48', problem(1, 90, 120, 1, 48, 24, [0, 5], 1), E({ bq: 32 }), { gated: false }],
  // one query (decoding shape) against 150 keys, D = 64 at 2 subgroups (31 KiB of workgroup memory)
  ['gated, Tq = 1, D = 64', problem(1, 1, 150, 2, 64, 25, [0, 5]), E({ kvSg: 2, qSg: 2 }), { gated: true }],
  // the tuning variants: dK and dV in two kernels, resident operands held, P kept in Hs
  [
    'gated ACP, split, held, P in Hs, D = 32',
    problem(2, 133, 150, 2, 32, 28, [-3, 1]),
    E({ kvSg: 2, qSg: 2, split: true, hold: true, pkeep: 'shared' }),
    { gated: true, acp: true, stats: true },
  ],
  [
    'softmax, split, 32-query tiles, D = 48',
    problem(1, 90, 120, 1, 48, 29, [0, 5], 1),
    E({ bq: 32, bk: 32, split: true }),
    { gated: false },
  ],
  ['gated, held, D = 16', problem(1, 70, 70, 1, 16, 30, [-3, 3]), E({ hold: true, kvSg: 4 }), { gated: true }],
  ['gated, P in Hs, D = 64', problem(1, 50, 50, 1, 64, 31, [-3, 3]), E({ pkeep: 'shared' }), { gated: true }],
  // the next tile's operands prefetched into registers (4 and 1 units per invocation; ACP bounds; the emulation's compile grows fast with the prefetched registers)
  [
    'gated ACP, prefetch, Tq < Tk, D = 32',
    problem(2, 133, 150, 2, 32, 32, [-3, 1]),
    E({ kvSg: 2, qSg: 2, prefetch: true }),
    { gated: true, acp: true, stats: true },
  ],
  [
    'gated ACP, prefetch, 4 subgroups, D = 16',
    problem(1, 300, 300, 1, 16, 34, [-3, 1]),
    E({ kvSg: 4, qSg: 4, prefetch: true, split: true }),
    { gated: true, acp: true, stats: true },
  ],
];

describe.skipIf(!f16)('the f16 backward, emulated', () => {
  it.each(cases)('%s matches float64', async (_name, p, cfg, opts) => {
    const want = await runFox(p, 'cpu', 'float64', opts);
    const got = await runHighBwd(gpu as WebGPUBackend, p, cfg, opts);
    const err = errors(got, want);
    for (const [k, e] of Object.entries(err)) expect(e, `${k}: ${e}`).toBeLessThanOrEqual(TOL);
    if (opts?.stats) expect(got.fraction).toBe(want.fraction);
    // the f32 forward ran (same o bits as precision highest), and the f16 backward: its rounding shows
    const f32 = await runFox(p, gpu as Backend, 'float32', opts);
    expect(got.o).toEqual(f32.o);
    expect(errors(got, f32).dk).toBeGreaterThan(1e-5);
  });

  it('scales operands outside the f16 range (q·1e5 with k·1e-5, v·1e6, dO·1e-6; tiny v with large dO) instead of overflowing', async () => {
    const base = problem(1, 40, 40, 1, 16, 26, [0, 5]);
    for (const [sq, sk, sv, sd] of [
      [1e5, 1e-5, 1e6, 1e-6],
      [1, 1, 1e-6, 1e4],
    ]) {
      const p = {
        ...base,
        q: base.q.map((x) => x * sq),
        k: base.k.map((x) => x * sk),
        v: base.v.map((x) => x * sv),
        dO: base.dO.map((x) => x * sd),
      };
      const want = await runFox(p, 'cpu', 'float64', { gated: true });
      const got = await runHighBwd(gpu as WebGPUBackend, p, E({ kvSg: 2 }), { gated: true });
      for (const g of [got.dq, got.dk, got.dv, got.dlogF as Float64Array]) expect(g.every(Number.isFinite)).toBe(true);
      const err = errors(got, want);
      for (const [k, e] of Object.entries(err)) expect(e, `${k}: ${e} at q·${sq} k·${sk} v·${sv} dO·${sd}`).toBeLessThanOrEqual(TOL);
    }
  });

  it('runs after the emulated f16 forward too (reads its lse2)', async () => {
    const g = gpu as WebGPUBackend;
    const p = problem(1, 70, 70, 1, 16, 27, [-3, 3]);
    const want = await runFox(p, 'cpu', 'float64', { gated: true });
    g.setPrecision('high');
    setFoxF16({ bk: 16, sg: 2, emulate: true });
    setFoxF16Bwd(E());
    const got = await runFox(p, g as Backend, 'float32', { gated: true });
    const err = errors(got, want);
    for (const [k, e] of Object.entries(err)) expect(e, `${k}: ${e}`).toBeLessThanOrEqual(TOL);
  });
});

describe('f16 backward configuration', () => {
  const stub = (precision: 'high' | 'highest', smem = 49152, buffers = 16, tensorCores = true) =>
    ({
      precision,
      tensorCores,
      features: new Set(['shader-f16']),
      device: { limits: { maxStorageBuffersPerShaderStage: buffers, maxComputeWorkgroupStorageSize: smem } },
    }) as unknown as WebGPUBackend;

  it('setFoxF16Bwd rejects unknown keys and values outside the kernels', () => {
    throwsNaming(() => setFoxF16Bwd({ ...FOX_F16_BWD_DEFAULT, kvSg: 3 }), 'setFoxF16Bwd', 'kvSg');
    throwsNaming(() => setFoxF16Bwd({ ...FOX_F16_BWD_DEFAULT, qSg: 8 }), 'setFoxF16Bwd', 'qSg');
    throwsNaming(() => setFoxF16Bwd({ ...FOX_F16_BWD_DEFAULT, bq: 64 }), 'setFoxF16Bwd', 'bq');
    throwsNaming(() => setFoxF16Bwd({ ...FOX_F16_BWD_DEFAULT, bk: 8 }), 'setFoxF16Bwd', 'bk');
    throwsNaming(() => setFoxF16Bwd({ ...FOX_F16_BWD_DEFAULT, pkeep: 'hs' } as unknown as FoxF16BwdConfig), 'setFoxF16Bwd', 'pkeep');
    throwsNaming(() => setFoxF16Bwd({ ...FOX_F16_BWD_DEFAULT, split: 1 } as unknown as FoxF16BwdConfig), 'setFoxF16Bwd', 'split');
    throwsNaming(() => setFoxF16Bwd({ ...FOX_F16_BWD_DEFAULT, tau: 1 } as unknown as FoxF16BwdConfig), 'setFoxF16Bwd', "unknown key 'tau'");
  });

  it("is off unless opted in; then on under 'high' at the head dims it takes, off under 'highest', windows and other head dims", () => {
    for (const D of [16, 32, 48, 64]) expect(foxF16BwdConfig(stub('high'), D, null)).toBeNull();
    setFoxF16Bwd(FOX_F16_BWD_DEFAULT);
    for (const D of [16, 32, 48, 64]) expect(foxF16BwdConfig(stub('high'), D, null)).toEqual(FOX_F16_BWD_DEFAULT);
    for (const D of [8, 24, 80, 128]) expect(foxF16BwdConfig(stub('high'), D, null)).toBeNull();
    expect(foxF16BwdConfig(stub('highest'), 64, null)).toBeNull();
    expect(foxF16BwdConfig(stub('high'), 64, 128)).toBeNull();
    expect(foxF16BwdConfig(stub('high', 49152, 16, false), 64, null)).toBeNull();
    setFoxF16Bwd(null);
    expect(foxF16BwdConfig(stub('high'), 64, null)).toBeNull();
  });

  it('an opted-in configuration that cannot run says why', () => {
    setFoxF16Bwd({ ...FOX_F16_BWD_DEFAULT, kvSg: 4 });
    throwsNaming(() => foxF16BwdConfig(stub('high'), 64, null), 'forgettingAttention', 'workgroup memory');
    setFoxF16Bwd(FOX_F16_BWD_DEFAULT);
    throwsNaming(() => foxF16BwdConfig(stub('high', 49152, 10), 64, null), 'forgettingAttention', 'storage buffers');
  });

  it('the default fits 48 KiB at D = 64; 16 × 16 tiles fit 32 KiB, as lavapipe has, for the emulated cases', () => {
    for (const kind of ['dkv', 'dq'] as const) {
      expect(f16BwdSmemBytes(kind, 64, FOX_F16_BWD_DEFAULT)).toBeLessThanOrEqual(49152);
      expect(f16BwdSmemBytes(kind, 64, { ...FOX_F16_BWD_DEFAULT, bq: 16, bk: 16 })).toBeLessThanOrEqual(32768);
    }
  });

  it('the hardware kernels use the subgroup-matrix builtins in their current spelling', () => {
    for (const kind of ['dkv', 'dq'] as const) {
      const code = foxBwdF16WGSL(kind, { D: 64, gated: true, acp: true }, FOX_F16_BWD_DEFAULT);
      expect(code).toContain('enable chromium_experimental_subgroup_matrix;');
      expect(code).toMatch(/subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>, col_major>\(&Ca, /);
      expect(code).toMatch(/subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>, row_major>\(&Ca, /);
      expect(code).toMatch(/subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>, row_major>\(&Hs, /);
      expect(code).toContain('subgroupMatrixStore<row_major>(&Sf, ');
      expect(code).toContain('subgroupMatrixMultiplyAccumulate(');
      expect(code).not.toContain('subgroupMatrixMultiply<');
      // matrix offsets and strides: multiples of 8 halves (16 bytes) or 4 floats
      for (const m of code.matchAll(/subgroupMatrix(?:Load<[^>]+>+|Store<row_major>)\(&(\w+), ([^,]+), (?:\w+, )?(\d+)u\)/g)) {
        const unit = m[1] === 'Sf' ? 4 : 8;
        expect(Number(m[3]) % unit, m[0]).toBe(0);
        for (const n of m[2].matchAll(/(\d+)u/g)) expect(Number(n[1]) % unit, m[0]).toBe(0);
      }
    }
  });

  // the H200 lesson of the forward (wgsl-f16.ts): keep each workgroup variable a whole number of
  // 16-byte units, so that whatever order the driver lays them out in, matrix loads stay aligned
  it('every workgroup variable is a multiple of 16 bytes', () => {
    const bytes: Record<string, number> = { f16: 2, f32: 4, u32: 4 };
    for (const kind of ['dkv', 'dq'] as const)
      for (const emulate of [false, true])
        for (const [D, sg, t] of [
          [64, 2, 16],
          [48, 1, 32],
          [16, 4, 16],
        ]) {
          const code = foxBwdF16WGSL(kind, { D, gated: true, acp: true }, { kvSg: sg, qSg: sg, bq: t, bk: t, emulate });
          const vars = [...code.matchAll(/var<workgroup> (\w+): ([^;]+);/g)];
          expect(vars.length).toBeGreaterThan(5);
          for (const [, name, type] of vars) {
            const m = /^array<(f16|f32|u32), (\d+)>$/.exec(type);
            expect(m, `${name}: ${type}`).not.toBeNull();
            expect((bytes[m![1]] * Number(m![2])) % 16, `${name}: ${type}`).toBe(0);
          }
        }
  });
});
