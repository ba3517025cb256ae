import { afterAll, describe, expect, it } from 'vitest';
import type { View } from '../src/backend.js';
import { FoxgateError } from '../src/errors.js';
import { emptyCache, memoryStats, tidy } from '../src/memory.js';
import { tensor } from '../src/ops/creation.js';
import { add, exp, mul, sum } from '../src/ops/index.js';
import { getBackend } from '../src/registry.js';
import { destroyTestWebGPU, testWebGPU, viewOn } from './util/webgpu.js';

const gpu = await testWebGPU();
afterAll(destroyTestWebGPU);

describe.skipIf(!gpu)('webgpu engine', () => {
  it('registers as the webgpu backend and describes the adapter', () => {
    expect(getBackend('webgpu')).toBe(gpu);
    expect(typeof gpu!.info.description).toBe('string');
    expect(gpu!.info.limits.maxStorageBufferBindingSize).toBeGreaterThan(0);
    expect(gpu!.info.adapterFeatures.length).toBeGreaterThan(0);
  });

  it('batches ramp up after a wait: 1, 2, 4, … dispatches per submit, then batchSize', async () => {
    const g = gpu!;
    const x = tensor([1, 2, 3, 4], [4], { backend: g });
    const made = [add(x, x)]; // the pipeline made before the count
    await g.sync();
    const [s0, d0] = [g.engine.submits, g.engine.dispatches];
    // 127 = 1 + 2 + 4 + 8 + 16 + 32 + 64 dispatches: seven submits, the last one full
    for (let i = 0; i < 127; i++) made.push(add(x, x));
    expect(g.engine.dispatches - d0).toBe(127);
    expect(g.engine.submits - s0).toBe(7);
    for (let i = 0; i < 128; i++) made.push(add(x, x));
    expect(g.engine.submits - s0).toBe(7 + 128 / g.engine.batchSize);
    // a read waits too: the next dispatch goes at once
    expect(Array.from(await made[127].data())).toEqual([2, 4, 6, 8]);
    const s1 = g.engine.submits;
    made.push(add(x, x));
    expect(g.engine.submits - s1).toBe(1);
    for (const t of [x, ...made]) t.dispose();
  });

  it('buffer pool: device buffers and live storages stay flat over 1,000 op loops', async () => {
    const x = tensor(
      Array.from({ length: 1000 }, (_, i) => i / 1000),
      [10, 100],
      { backend: gpu! },
    );
    const step = () =>
      tidy(() => {
        const y = add(mul(x, 2), 1);
        return sum(exp(y), 1);
      });
    for (let i = 0; i < 20; i++) step().dispose();
    await gpu!.sync();
    const before = gpu!.memory();
    const createdBefore = gpu!.engine.pool.created;
    let last = 0;
    for (let i = 0; i < 1000; i++) {
      const r = step();
      if (i === 999) last = (await r.data())[0];
      r.dispose();
    }
    await gpu!.sync();
    const after = gpu!.memory();
    expect(after.storages).toBe(before.storages);
    expect(after.bytesInUse).toBe(before.bytesInUse);
    expect(after.deviceBuffers).toBe(before.deviceBuffers);
    expect(gpu!.engine.pool.created).toBe(createdBefore);
    let want = 0;
    for (let j = 0; j < 100; j++) want += Math.exp(2 * Math.fround(j / 1000) + 1);
    expect(last).toBeCloseTo(want, 2);
    const stats = memoryStats().backends.webgpu;
    expect(stats.storages).toBe(after.storages);
    expect(stats.pooledBuffers).toBeGreaterThan(0);
    x.dispose();
  });

  it('emptyCache returns the pooled buffers to the device; live tensors and later work are unaffected', async () => {
    const live = tensor([1, 2, 3, 4], [4], { backend: gpu! });
    // free buffers into the pool, with commands that used them still unsubmitted
    for (let i = 0; i < 5; i++) add(mul(live, i), 1).dispose();
    const acc = add(live, 0.5);
    expect(gpu!.memory().pooledBuffers).toBeGreaterThan(0);
    const before = gpu!.memory();
    emptyCache();
    const after = gpu!.memory();
    expect(after.pooledBuffers).toBe(0);
    expect(after.pooledBytes).toBe(0);
    expect(after.deviceBuffers).toBe((before.deviceBuffers ?? 0) - (before.pooledBuffers ?? 0));
    expect(after.storages).toBe(before.storages);
    // the pool's budget restarts from the bytes live now
    expect(gpu!.engine.peakBytes).toBe(before.bytesInUse);
    expect(Array.from(await acc.data())).toEqual([1.5, 2.5, 3.5, 4.5]);
    expect(Array.from(await mul(live, 2).data())).toEqual([2, 4, 6, 8]);
    gpu!.engine.checkError();
    acc.dispose();
    live.dispose();
  });

  it('buffers freed beyond the pool budget are destroyed only after the commands using them are submitted', async () => {
    const pool = gpu!.engine.pool;
    const budget = pool.maxPooledBytes;
    await gpu!.sync();
    pool.maxPooledBytes = 0; // every freed buffer is destroyed rather than pooled
    pool.followPeak = false;
    try {
      const x = tensor(
        Array.from({ length: 4096 }, (_, i) => (i % 17) / 17),
        [4096],
        { backend: gpu! },
      );
      // the temporaries of each step are freed while their dispatches are still unsubmitted
      let acc = x;
      for (let i = 0; i < 10; i++) {
        const next = tidy(() => add(mul(acc, 0.5), 1));
        if (acc !== x) acc.dispose();
        acc = next;
      }
      const out = (await acc.data()) as Float32Array;
      for (const i of [0, 5, 4095]) {
        let want = (i % 17) / 17;
        for (let k = 0; k < 10; k++) want = want * 0.5 + 1;
        expect(out[i]).toBeCloseTo(want, 5);
      }
      acc.dispose();
      x.dispose();
      await gpu!.sync();
      expect(memoryStats().backends.webgpu.pooledBuffers).toBe(pool.pooledBuffers);
    } finally {
      pool.maxPooledBytes = budget;
      pool.followPeak = true;
    }
  });

  it('the pool budget follows the peak live bytes: a loop larger than maxPooledBytes reuses its buffers', async () => {
    const pool = gpu!.engine.pool;
    const budget = pool.maxPooledBytes;
    await gpu!.sync();
    pool.maxPooledBytes = 0; // only the peak rule keeps buffers
    pool.clear(); // nothing pooled from earlier tests (all work was submitted by sync)
    try {
      const x = tensor(
        Array.from({ length: 256 * 1024 }, (_, i) => (i % 101) / 101),
        [256, 1024],
        { backend: gpu! },
      );
      const step = () => tidy(() => sum(exp(add(mul(x, 2), 1)), 1));
      for (let i = 0; i < 3; i++) step().dispose();
      await gpu!.sync();
      const created = pool.created;
      for (let i = 0; i < 20; i++) step().dispose();
      await gpu!.sync();
      expect(pool.created).toBe(created);
      x.dispose();
    } finally {
      pool.maxPooledBytes = budget;
    }
  });

  it('the pool keeps up to twice the peak: a loop whose size buckets add up to more than its peak creates no buffers', async () => {
    const e = gpu!.engine;
    const pool = e.pool;
    const budget = pool.maxPooledBytes;
    await gpu!.sync();
    pool.maxPooledBytes = 0; // only the peak rule keeps buffers
    emptyCache(); // nothing pooled; the peak restarts at the live bytes
    try {
      // two buckets, X and 1.25·X, used one after the other: peak live + 1.25·X, working set 2.25·X
      const X = 2 ** Math.ceil(Math.log2(4 * e.bytesInUse + 2 ** 20));
      const iter = () => {
        for (const bytes of [X, 1.25 * X]) e.free(e.alloc(bytes));
        e.flush();
      };
      iter();
      const created = pool.created;
      for (let i = 0; i < 10; i++) iter();
      expect(pool.created).toBe(created);
      expect(pool.pooledBytes).toBe(2.25 * X);
      expect(e.peakBytes).toBeLessThan(2.25 * X); // one peak's budget would have destroyed one of them each time
    } finally {
      pool.maxPooledBytes = budget;
    }
  });

  it('folded grids: an elementwise op over more than 65,535·256 elements', async () => {
    const n = 65535 * 256 + 4099;
    const data = new Float32Array(n + 1);
    for (let i = 0; i < data.length; i++) data[i] = i % 1021;
    // offset 1 defeats the vec4 path: one thread per element, a 2-D grid of workgroups
    const x: View = { ...viewOn(gpu!, { data, dtype: 'float32', shape: [n] }), offset: 1 };
    const y = gpu!.unary('neg', x, 'float32');
    const out = (await gpu!.read(y, 'float32', n)) as Float32Array;
    for (const i of [0, 1, 65535 * 256 - 1, 65535 * 256, n - 2, n - 1]) expect(out[i]).toBe(-((i + 1) % 1021));
    let bad = 0;
    for (let i = 0; i < n; i += 997) if (out[i] !== -((i + 1) % 1021)) bad++;
    expect(bad).toBe(0);
    const s = gpu!.reduce('sum', { storage: y, dtype: 'float32', shape: [n], strides: [1], offset: 0 }, [0]);
    let want = 0;
    for (let i = 1; i <= n; i++) want -= i % 1021;
    expect(Math.abs((await gpu!.read(s, 'float32', 1))[0] - want) / Math.abs(want)).toBeLessThan(1e-5);
    for (const st of [x.storage, y, s]) gpu!.free(st);
  });

  it('runKernel: bindings, uniforms, views with offsets, copied strided views, zeroed atomic outputs', async () => {
    const base = new Float32Array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    const st = gpu!.upload(base, 'float32');
    const sliced: View = { storage: st, dtype: 'float32', shape: [4], strides: [1], offset: 5 }; // 5..8
    const strided: View = { storage: st, dtype: 'float32', shape: [4], strides: [3], offset: 0 }; // 0,3,6,9
    const [out, count] = gpu!.runKernel({
      name: 'test_axpy',
      inputs: [
        { name: 'x', data: sliced },
        { name: 'y', data: strided },
      ],
      outputs: [
        { name: 'o', size: 4, dtype: 'float32' },
        { name: 'cnt', size: 1, dtype: 'uint32', zero: true, elem: 'atomic<u32>' },
      ],
      uniforms: { u32: { n: 4 }, f32: { alpha: 0.5 } },
      workgroups: 1,
      code: `
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  if (wg_linear(wid, nwg) >= P.num_wg) { return; }
  if (lid < P.n) {
    o[lid] = P.alpha * x[P.x_offset + lid] + y[P.y_offset + lid];
    atomicAdd(&cnt[0], 1u);
  }
}`,
    });
    expect(Array.from(await gpu!.read(out, 'float32', 4))).toEqual([2.5, 6, 9.5, 13]);
    expect(Array.from(await gpu!.read(count, 'uint32', 1))).toEqual([4]);
    for (const s of [st, out, count]) gpu!.free(s);
    const [t] = gpu!.runKernelTensors({
      name: 'test_iota',
      inputs: [],
      outputs: [{ name: 'o', shape: [2, 3], dtype: 'int32' }],
      workgroups: 1,
      code: '@compute @workgroup_size(8) fn main(@builtin(local_invocation_index) lid: u32) { if (lid < 6u) { o[lid] = i32(lid) * 2i; } }',
    });
    expect(await t.toArray()).toEqual([
      [0, 2, 4],
      [6, 8, 10],
    ]);
    t.dispose();
  });

  it('a WGSL error in runKernel surfaces as a FoxgateError naming the kernel, and the device keeps working', async () => {
    const [bad] = gpu!.runKernel({
      name: 'broken_kernel',
      inputs: [],
      outputs: [{ name: 'o', size: 4, dtype: 'float32' }],
      workgroups: 1,
      code: '@compute @workgroup_size(4) fn main(@builtin(local_invocation_index) lid: u32) { o[lid] = 1.0 +; }',
    });
    const err = await gpu!.read(bad, 'float32', 4).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(FoxgateError);
    expect(String((err as Error).message)).toMatch(/broken_kernel/);
    gpu!.free(bad);
    // a second use of the same broken source fails at once, synchronously
    expect(() =>
      gpu!.runKernel({
        name: 'broken_kernel',
        inputs: [],
        outputs: [{ name: 'o', size: 4, dtype: 'float32' }],
        workgroups: 1,
        code: '@compute @workgroup_size(4) fn main(@builtin(local_invocation_index) lid: u32) { o[lid] = 1.0 +; }',
      }),
    ).toThrow(/broken_kernel/);
    // bad names are rejected before anything is dispatched
    expect(() =>
      gpu!.runKernel({ name: 'k', inputs: [], outputs: [{ name: 'not valid', size: 1, dtype: 'float32' }], workgroups: 1, code: '' }),
    ).toThrow(FoxgateError);
    const ok = tensor([1, 2, 3], [3], { backend: gpu! });
    expect(Array.from(await add(ok, 1).data())).toEqual([2, 3, 4]);
  });
});

describe.skipIf(!gpu)('webgpu lifecycle', () => {
  it('debug mode names the failing kernel; a destroyed device refuses work', async () => {
    await destroyTestWebGPU();
    const { initWebGPU } = await import('../src/backends/webgpu/device.js');
    const dbg = await initWebGPU({ debug: true });
    // binding a 4-byte uniform-less kernel to a buffer too small for its fixed-size array
    const [o] = dbg.runKernel({
      name: 'too_small_binding',
      inputs: [],
      outputs: [{ name: 'o', size: 1, dtype: 'float32', elem: 'f32, 1000000' as string }],
      workgroups: 1,
      code: '@compute @workgroup_size(1) fn main() { o[0] = 1.0; }',
    });
    const err = await dbg.read(o, 'float32', 1).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(FoxgateError);
    expect(String((err as Error).message)).toMatch(/too_small_binding/);
    await dbg.destroy();
    expect(dbg.isDestroyed).toBe(true);
    expect(() => dbg.fill(3, 1, 'float32')).toThrow(/destroyed/);
    expect(() => getBackend('webgpu')).toThrow(/initWebGPU/);
  });
});
