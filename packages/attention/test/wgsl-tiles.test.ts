import type { Backend, WebGPUBackend } from '@foxgate/tensor';
import { destroyTestWebGPU, testWebGPU } from '@foxgate/testing';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type FoxTileOverrides, foxTilesFor, setFoxTiles } from '../src/dev.js';
import { ALL_CLOSE, compareResults, problem, runFox } from './util/fox.js';

/**
 * Every tile configuration the WGSL generator offers (8-row / 8-column micro-tiles meant for
 * large GPUs, and small ones) must compute the same thing: each is run with ACP on a problem
 * with partial tiles and Tq < Tk, against the fused CPU kernel.
 */
const gpu = await testWebGPU();
afterAll(destroyTestWebGPU);
afterEach(() => setFoxTiles({}));

const configs: [string, FoxTileOverrides][] = [
  [
    'fwd 64x32 4x2, dkv 32x32 4x2, dq 32x32 4x2 (the tiled kernels on hardware, not pipelined)',
    { fwd: { bq: 64, bk: 32, tm: 4, tn: 2 }, dkv: { bq: 32, bk: 32, tm: 4, tn: 2 }, dq: { bq: 32, bk: 32, tm: 4, tn: 2 } },
  ],
  [
    'the tiled kernels on hardware, register-pipelined (pf; dK/dV default)',
    {
      fwd: { bq: 64, bk: 32, tm: 4, tn: 2, pf: true },
      dkv: { bq: 32, bk: 32, tm: 4, tn: 2, pf: true },
      dq: { bq: 32, bk: 32, tm: 4, tn: 2, pf: true },
    },
  ],
  [
    'fwd 16x8 4x2, dkv 8x8 4x1, dq 8x16 4x4, pipelined',
    {
      fwd: { bq: 16, bk: 8, tm: 4, tn: 2, pf: true },
      dkv: { bq: 8, bk: 8, tm: 4, tn: 1, pf: true },
      dq: { bq: 8, bk: 16, tm: 4, tn: 4, pf: true },
    },
  ],
  [
    'wide forward, dQ and dK/dV, 4 rows per thread, pipelined, subgroup row maxima (the hardware default where subgroups allow)',
    {
      wide: { bk: 64, tm: 4, pf: true, sg: true },
      wideDq: { bk: 64, tm: 4, pf: true, sg: true },
      wideDkv: { bk: 64, tm: 4, pf: true, sg: true },
    },
  ],
  [
    'wide forward and dK/dV accumulating dQ (fuseDq: atomic adds, no dQ kernel), 32 query columns, pipelined',
    {
      wide: { bk: 64, tm: 4, pf: true, sg: true },
      wideDq: { bk: 64, tm: 4, pf: true, sg: true },
      wideDkv: { bk: 32, tm: 4, pf: true, sg: true, fuseDq: true },
    },
  ],
  [
    'fwd 64x32 8x4, dkv 32x32 8x4, dq 32x32 4x8',
    { fwd: { bq: 64, bk: 32, tm: 8, tn: 4 }, dkv: { bq: 32, bk: 32, tm: 8, tn: 4 }, dq: { bq: 32, bk: 32, tm: 4, tn: 8 } },
  ],
  [
    'fwd 64x64 8x8, dkv 16x64 8x4, dq 64x16 8x4',
    { fwd: { bq: 64, bk: 64, tm: 8, tn: 8 }, dkv: { bq: 16, bk: 64, tm: 8, tn: 4 }, dq: { bq: 64, bk: 16, tm: 8, tn: 4 } },
  ],
  [
    'fwd 16x8 4x2, dkv 8x8 4x1, dq 8x16 4x4',
    { fwd: { bq: 16, bk: 8, tm: 4, tn: 2 }, dkv: { bq: 8, bk: 8, tm: 4, tn: 1 }, dq: { bq: 8, bk: 16, tm: 4, tn: 4 } },
  ],
];

/**
 * Software adapters get the dynamic kernels (runtime head dim, see `FoxKernelSpec.dynamic`);
 * hardware gets constants, vec4 bindings and unrolled loops. These tests run the hardware variant
 * (`software` switched off) so that the code the GPUs run is checked here too; head dims are
 * small to keep lavapipe's compile (seconds per kernel) and workgroup memory (32 KiB) in bounds.
 */
async function asHardware(fn: () => Promise<void>): Promise<void> {
  const backend = gpu as unknown as { software: boolean };
  const soft = backend.software;
  backend.software = false;
  try {
    await fn();
  } finally {
    backend.software = soft;
  }
}

describe.skipIf(!gpu)('WGSL tile configurations (hardware code path)', () => {
  const D = 8;
  const p = problem(2, 75, 133, 2, D, 31, [-3, 1], 0.5);
  const cpu = runFox(p, 'cpu', 'float32', { acp: true, stats: true });

  it.each(configs)('%s', (_label, tiles) =>
    asHardware(async () => {
      setFoxTiles(tiles);
      const used = foxTilesFor(gpu as unknown as WebGPUBackend, D);
      for (const [kind, t] of Object.entries(tiles)) expect(used[kind as keyof typeof used], `${kind} tiles fit`).toEqual(t);
      const r = await runFox(p, gpu as unknown as Backend, 'float32', { acp: true, stats: true });
      const c = await cpu;
      expect(c.fraction).toBeLessThan(1);
      expect(r.fraction).toBe(c.fraction);
      expect(compareResults(r, c)).toEqual(ALL_CLOSE);
    }),
  );

  it('fuseDq without forget gates (softmaxAttention: no column sums), and only on the dK/dV kernel', () =>
    asHardware(async () => {
      setFoxTiles({ wideDkv: { bk: 32, tm: 4, pf: true, fuseDq: true } });
      const c = await runFox(p, 'cpu', 'float32', { gated: false });
      const r = await runFox(p, gpu as unknown as Backend, 'float32', { gated: false });
      expect(compareResults(r, c)).toEqual(ALL_CLOSE);
      expect(() => setFoxTiles({ wide: { bk: 64, fuseDq: true } })).toThrow(
        /^setFoxTiles: fuseDq applies to the dK\/dV kernel \(wideDkv\), not to wide$/,
      );
    }));

  it('deterministic: true with fuseDq set runs the dQ kernel instead: the same gradients, bitwise equal across runs', () =>
    asHardware(async () => {
      setFoxTiles({ wideDkv: { bk: 32, tm: 4, pf: true, fuseDq: true } });
      const c = await cpu;
      const runs = [];
      for (let i = 0; i < 2; i++)
        runs.push(await runFox(p, gpu as unknown as Backend, 'float32', { acp: true, stats: true, deterministic: true }));
      expect(compareResults(runs[0], c)).toEqual(ALL_CLOSE);
      expect(compareResults(runs[1], runs[0], 0, 0)).toEqual(ALL_CLOSE);
    }));

  it('the software (dynamic head dim) kernels, pipelined', async () => {
    const pf = { bq: 16, bk: 16, tm: 4, tn: 1, pf: true };
    setFoxTiles({ fwd: pf, dkv: pf, dq: pf });
    const q = problem(1, 40, 70, 2, 6, 43, [-3, 1], 0.5);
    const c = await runFox(q, 'cpu', 'float32', { acp: true, stats: true });
    const r = await runFox(q, gpu as unknown as Backend, 'float32', { acp: true, stats: true });
    expect(r.fraction).toBe(c.fraction);
    expect(compareResults(r, c)).toEqual(ALL_CLOSE);
  });

  const wide20 = { bk: 64, tm: 4, pf: true, dch: 4 };
  const wideSg = { bk: 32, tm: 4, pf: true, sg: true };
  it.each([
    [
      'forward 128-key tiles, dQ and dK/dV 64, 4 rows per thread, pipelined, row maxima through workgroup memory (the defaults without subgroups), in 16-wide D chunks, D = 20 (two chunks, a partial output group)',
      { wide: { ...wide20, bk: 128 }, wideDq: wide20, wideDkv: wide20 },
      20,
    ],
    ['32-key tiles, 8 rows per thread, not pipelined, D = 12', { wide: { bk: 32 }, wideDq: { bk: 32 }, wideDkv: { bk: 32 } }, 12],
    [
      'dK/dV accumulating dQ (fuseDq), 32 query columns, 8 rows per thread, not pipelined, D = 68 (8 query groups × 17 dim groups: two per thread, the second partial)',
      { wide: { bk: 32 }, wideDq: { bk: 32 }, wideDkv: { bk: 32, fuseDq: true } },
      68,
    ],
    [
      'set for a head dim above 64 (not a default there): D = 68, three D chunks (the last partial), three output groups (the last partial), subgroup row maxima',
      { wide: wideSg, wideDq: wideSg, wideDkv: wideSg },
      68,
    ],
  ] as const)('the wide kernels over several 128-query (key) tiles: %s', (_label, tiles, D) =>
    asHardware(async () => {
      setFoxTiles(tiles);
      const used = foxTilesFor(gpu as unknown as WebGPUBackend, D);
      expect([used.wide, used.wideDq, used.wideDkv]).toEqual([tiles.wide, tiles.wideDq, tiles.wideDkv]);
      const q = problem(1, 290, 333, 2, D, 47, [-3, 1], 0.5);
      const c = await runFox(q, 'cpu', 'float32', { acp: true, stats: true });
      expect(c.fraction).toBeLessThan(1);
      const r = await runFox(q, gpu as unknown as Backend, 'float32', { acp: true, stats: true });
      expect(r.fraction).toBe(c.fraction);
      expect(compareResults(r, c)).toEqual(ALL_CLOSE);
    }),
  );

  it('hardware defaults: the wide kernels where they apply, the tiled ones elsewhere or when their tiles are set', () =>
    asHardware(async () => {
      const backend = gpu as unknown as WebGPUBackend;
      // lavapipe's subgroups (size 8, subgroup_id) qualify for the subgroup row maxima
      const def = { bk: 64, tm: 4, pf: true, sg: true };
      expect(backend.info.features).toContain('subgroups');
      expect(foxTilesFor(backend, 64).wide).toEqual(def);
      expect(foxTilesFor(backend, 64).wideDq).toEqual(def);
      expect(foxTilesFor(backend, 64).wideDkv).toEqual(def);
      // the forward takes 128-key tiles where they fit (not at D = 64 in lavapipe's 32 KiB)
      expect(foxTilesFor(backend, 16).wide).toEqual({ ...def, bk: 128 });
      expect(foxTilesFor(backend, 16).wideDq).toEqual(def);
      // 64 < D ≤ 128: 64-key tiles everywhere where they fit (D = 128 needs 32.5 KiB: more than
      // lavapipe's 32); above 128 or D not a multiple of 4: the tiled kernels
      expect(foxTilesFor(backend, 100).wide).toEqual(def);
      expect(foxTilesFor(backend, 100).wideDkv).toEqual(def);
      expect(foxTilesFor(backend, 128).wide).toBe(false);
      expect(foxTilesFor(backend, 132).wide).toBe(false);
      expect(foxTilesFor(backend, 30).wide).toBe(false);
      setFoxTiles({ fwd: { bq: 16, bk: 8, tm: 4, tn: 2 }, dq: { bq: 16, bk: 16, tm: 4, tn: 4 }, dkv: { bq: 16, bk: 16, tm: 4, tn: 4 } });
      expect(foxTilesFor(backend, 64).wide).toBe(false);
      expect(foxTilesFor(backend, 64).wideDq).toBe(false);
      expect(foxTilesFor(backend, 64).wideDkv).toBe(false);
    }));

  it('defaults with 48 KiB of workgroup memory (as on NVIDIA GPUs): dK/dV accumulates dQ unless deterministic', () =>
    asHardware(async () => {
      const backend = gpu as unknown as WebGPUBackend;
      const limits = new Proxy(backend.device.limits, {
        get: (t, k) => (k === 'maxComputeWorkgroupStorageSize' ? 49152 : Reflect.get(t, k)),
      });
      const big = Object.create(backend, { device: { value: { limits } } }) as WebGPUBackend;
      const def = { bk: 64, tm: 4, pf: true, sg: true };
      for (const D of [64, 128]) {
        expect(foxTilesFor(big, D).wideDkv, `D = ${D}`).toEqual({ ...def, fuseDq: true });
        expect(foxTilesFor(big, D).wideDq, `D = ${D}`).toEqual(def);
      }
      expect(foxTilesFor(big, 64).wide).toEqual({ ...def, bk: 128 });
      expect(foxTilesFor(big, 128).wide).toEqual(def);
      expect(foxTilesFor(big, 64, true).wideDkv).toEqual(def);
      // deterministic drops an overridden fuseDq too
      setFoxTiles({ wideDkv: { ...def, fuseDq: true } });
      expect(foxTilesFor(big, 64).wideDkv).toEqual({ ...def, fuseDq: true });
      expect(foxTilesFor(big, 64, true).wideDkv).toEqual({ ...def, fuseDq: false });
      expect(() => setFoxTiles({ deterministic: true } as never)).toThrow(/^setFoxTiles: unknown key 'deterministic'/);
    }));

  it('a head dim that is not a multiple of 4 (scalar loads), default tiles', () =>
    asHardware(async () => {
      const q = problem(1, 40, 70, 2, 6, 41, [-3, 1], 0.5);
      const c = await runFox(q, 'cpu', 'float32', { acp: true, stats: true });
      const r = await runFox(q, gpu as unknown as Backend, 'float32', { acp: true, stats: true });
      expect(r.fraction).toBe(c.fraction);
      expect(compareResults(r, c)).toEqual(ALL_CLOSE);
    }));
});
