// Timestamp profiles of WebGPU dispatches and the resettable memory peak (lavapipe or a real GPU).
import { afterAll, describe, expect, it } from 'vitest';
import { kernelFamily } from '../src/backends/webgpu/profiler.js';
import { getBackend } from '../src/index.js';
import { memoryStats, resetPeakMemory } from '../src/memory.js';
import { tensor, zeros } from '../src/ops/creation.js';
import { add, matmul, softmax } from '../src/ops/index.js';
import { destroyTestWebGPU, testWebGPU } from './util/webgpu.js';

const gpu = await testWebGPU();
afterAll(destroyTestWebGPU);

describe('kernelFamily', () => {
  it('attention kernels, matmuls, the rest by name', () => {
    expect(['fox_forward', 'fox_backward_dkdv', 'fox_dlogf', 'sparsek_forward'].map(kernelFamily)).toEqual(Array(4).fill('attention'));
    expect(['matmul', 'matmul_high', 'matmul_high_pack'].map(kernelFamily)).toEqual(Array(3).fill('matmul'));
    expect(['add', 'softmax', 'adamw_step', 'take', 'cumsum'].map(kernelFamily)).toEqual(Array(5).fill('other'));
  });
});

describe.skipIf(!gpu)('webgpu profile', () => {
  it('times every dispatch by kernel name and family; the results are the same as without it', async () => {
    const g = gpu!;
    const vals = Array.from({ length: 64 * 64 }, (_, i) => Math.sin(i) / 8);
    const x = tensor(vals, [64, 64], { backend: g });
    const run = async () => {
      let y = x;
      const made = [];
      for (let i = 0; i < 3; i++) {
        const m = matmul(y, x);
        y = softmax(m, -1);
        made.push(m, y);
      }
      for (let i = 0; i < 194; i++) {
        y = add(y, 1e-3);
        made.push(y);
      }
      const out = await y.data();
      for (const t of made) t.dispose();
      return Array.from(out);
    };
    const plain = await run();
    expect(g.engine.profiler).toBeNull();
    const d0 = g.engine.dispatches;
    g.startProfile();
    const profiled = await run();
    const p = await g.stopProfile();
    const dispatched = g.engine.dispatches - d0;
    expect(g.engine.profiler).toBeNull();
    expect(profiled).toEqual(plain);
    // every dispatch timed, across the 64-dispatch command buffers
    expect(p.untimed).toBe(0);
    expect(p.dispatches).toBe(dispatched);
    const byName = new Map(p.kernels.map((k) => [k.kernel, k]));
    expect(byName.get('matmul')?.dispatches).toBe(3);
    expect(byName.get('matmul')?.family).toBe('matmul');
    expect(byName.get('softmax')?.dispatches).toBe(3);
    expect(p.families.attention).toBe(0);
    expect(p.families.matmul).toBeGreaterThan(0);
    expect(p.families.other).toBeGreaterThan(0);
    const sum = p.kernels.reduce((s, k) => s + k.ms, 0);
    expect(p.totalMs).toBeCloseTo(sum, 9);
    expect(p.families.attention + p.families.matmul + p.families.other).toBeCloseTo(sum, 9);
    for (let i = 1; i < p.kernels.length; i++) expect(p.kernels[i].ms).toBeLessThanOrEqual(p.kernels[i - 1].ms);
    x.dispose();
  });

  it('by detail: a matmul per shape and layout, families by name', async () => {
    const g = gpu!;
    const a = tensor(
      Array.from({ length: 48 * 20 }, (_, i) => Math.cos(i)),
      [48, 20],
      { backend: g },
    );
    const b = tensor(
      Array.from({ length: 20 * 36 }, (_, i) => Math.sin(i)),
      [20, 36],
      { backend: g },
    );
    g.startProfile({ detail: true });
    const made = [matmul(a, b), matmul(a, b), matmul(b.transpose(0, 1), a.transpose(0, 1)), add(a, 1)];
    await made[3].data();
    const p = await g.stopProfile();
    const mm = p.kernels.filter((k) => k.kernel.startsWith('matmul '));
    expect(mm.map((k) => k.kernel.split(' ')[1]).sort()).toEqual(['36×48×20', '48×36×20']);
    expect(mm.find((k) => k.kernel.includes('48×36×20'))?.dispatches).toBe(2);
    for (const k of mm) expect(k.family).toBe('matmul');
    expect(p.kernels.find((k) => k.kernel === 'add')?.family).toBe('other');
    expect(p.families.matmul).toBeCloseTo(
      mm.reduce((s, k) => s + k.ms, 0),
      9,
    );
    for (const t of [a, b, ...made]) t.dispose();
  });

  it('refuses a second start and a stop without a start, naming the profile', async () => {
    const g = gpu!;
    g.startProfile();
    expect(() => g.startProfile()).toThrow(/^webgpu profile: a profile is already running/);
    await g.stopProfile();
    await expect(g.stopProfile()).rejects.toThrow(/^webgpu profile: no profile is running/);
  });
});

describe('resetPeakMemory', () => {
  for (const name of ['cpu', 'webgpu'] as const) {
    it.skipIf(name === 'webgpu' && !gpu)(`${name}: the peak since the reset, not since the start`, async () => {
      const be = getBackend(name);
      const bytes = () => memoryStats().backends[name];
      const big = zeros([1 << 18], { backend: be }); // 1 MiB
      big.dispose();
      const afterBig = bytes().peakBytes ?? 0;
      expect(afterBig).toBeGreaterThanOrEqual((bytes().bytesInUse ?? 0) + (1 << 20));
      resetPeakMemory();
      expect(bytes().peakBytes).toBe(bytes().bytesInUse);
      const base = bytes().bytesInUse;
      const small = zeros([1024], { backend: be }); // 4 KiB
      const b = zeros([1024], { backend: be });
      const now = bytes();
      expect(now.bytesInUse).toBe(base + 2 * 4096);
      expect(now.peakBytes).toBe(now.bytesInUse);
      expect(now.peakBytes).toBeLessThan(afterBig);
      small.dispose();
      b.dispose();
      // freeing does not lower the peak
      expect(bytes().peakBytes).toBe(now.peakBytes);
    });
  }
});
