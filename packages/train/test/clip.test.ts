import { valueAndGrad } from '@foxgate/autograd';
import {
  type Backend,
  type DType,
  dispose,
  matmul,
  mean,
  memoryStats,
  mul,
  narrow,
  sub,
  type Tensor,
  tensor,
  type WebGPUBackend,
} from '@foxgate/tensor';
import { destroyTestWebGPU, testWebGPU } from '@foxgate/testing';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { accumulateGrads, addTrees, clipFactor, clipGradNorm, globalNorm, scaleTree } from '../src/index.js';
import { throwsNaming, uniformValues } from './util/optim.js';

const gpu = (await testWebGPU()) as unknown as WebGPUBackend | null;
const gpuB = gpu as unknown as Backend;
afterAll(destroyTestWebGPU);

/** A gradient tree with leaves of several sizes (one above 1e4 elements), on `backend`. */
type G = { layers: { w: Tensor; b: Tensor }[]; emb: Tensor; ids: Tensor; tag: string };
const SIZES = [[64, 33], [33], [33, 5], [5]] as const;
function grads(seed: number, dtype: DType, backend: string | Backend = 'cpu', scale = 1): G {
  const t = (shape: readonly number[], k: number) =>
    tensor(
      uniformValues(
        shape.reduce((a, b) => a * b, 1),
        seed * 10 + k,
        scale,
      ),
      [...shape],
      { dtype, backend },
    );
  return {
    layers: [
      { w: t(SIZES[0], 0), b: t(SIZES[1], 1) },
      { w: t(SIZES[2], 2), b: t(SIZES[3], 3) },
    ],
    emb: t([100, 120], 4),
    ids: tensor([1, 2, 3], [3], { dtype: 'int32', backend }),
    tag: 'grads',
  };
}
const floatLeaves = (g: G) => [g.layers[0].w, g.layers[0].b, g.layers[1].w, g.layers[1].b, g.emb];
/** ‖g‖ in float64 from the leaves' data. */
const normOf = async (g: G) => {
  let s = 0;
  for (const t of floatLeaves(g)) for (const x of await t.data()) s += x * x;
  return Math.sqrt(s);
};

describe('globalNorm', () => {
  it('hand-computed: √(3² + 4² + 12²) = 13; int leaves are skipped', () => {
    const g = {
      a: tensor([3, 4], [2], { dtype: 'float64' }),
      b: [tensor([[12]], [1, 1], { dtype: 'float64' })],
      n: tensor([100], [1], { dtype: 'int32' }),
    };
    const norm = globalNorm(g);
    expect(norm.shape).toEqual([]);
    expect(norm.dtype).toBe('float64');
    expect(norm.itemSync()).toBe(13);
    dispose([g, norm]);
  });

  it('mixes float32 and float64 leaves in the first leaf’s dtype', () => {
    const g = { a: tensor([3], [1], { dtype: 'float32' }), b: tensor([4], [1], { dtype: 'float64' }) };
    const norm = globalNorm(g);
    expect(norm.dtype).toBe('float32');
    expect(norm.itemSync()).toBe(5);
    dispose([g, norm]);
  });

  it('float32 on the CPU is within 1e-6 of the float64 sum over 12 000+ elements', async () => {
    const g = grads(1, 'float32');
    const norm = globalNorm(g);
    expect(Math.abs(norm.itemSync() - (await normOf(g))) / (await normOf(g))).toBeLessThan(1e-6);
    dispose([g, norm]);
  });

  it.skipIf(!gpu)('on WebGPU: the same norm, as a device tensor, without a readback', async () => {
    const g = grads(1, 'float32', gpuB);
    const want = await normOf(g);
    await gpu!.sync();
    const reads = [vi.spyOn(gpu!, 'read'), vi.spyOn(gpu!.engine, 'read')];
    const norm = globalNorm(g);
    for (const r of reads) expect(r).not.toHaveBeenCalled();
    for (const r of reads) r.mockRestore();
    expect(norm.backend).toBe(gpuB);
    expect(Math.abs((await norm.item()) - want) / want).toBeLessThan(1e-6);
    dispose([g, norm]);
  });
});

/** Elements `start..start+length` of `base` (a view with an offset); disposes the `base` handle. */
function part(base: Tensor, start: number, length: number): Tensor {
  const v = narrow(base, 0, start, length);
  base.dispose();
  return v;
}

describe('globalNorm on WebGPU: one dispatch per leaf plus one', () => {
  it.skipIf(!gpu)('large leaves (grid-stride loops, scalar and vec4), offset views, empty and int leaves', async () => {
    const f32 = { dtype: 'float32', backend: gpuB } as const;
    // beyond 1024 workgroups · 256 threads: two rounds of the loop for 300 001 scalars, and for
    // 1 200 000 elements read as vec4
    const big = uniformValues(300_001, 7, 2);
    const big4 = uniformValues(1_200_000, 8, 0.5);
    const base = uniformValues(60, 9);
    const g = {
      big: tensor(big, [300_001], f32),
      big4: tensor(big4, [1000, 1200], f32),
      view: part(tensor(base, [60], f32), 13, 30), // element offset 13: scalar reads
      view4: part(tensor(base, [60], f32), 8, 40), // element offset 8: vec4 reads
      empty: tensor(new Float32Array(0), [0, 4], f32),
      small: tensor([3], [1], f32),
      ids: tensor([9], [1], { dtype: 'int32', backend: gpuB }),
    };
    let want = 9;
    for (const x of big) want += x * x;
    for (const x of big4) want += x * x;
    for (const x of base.subarray(13, 43)) want += x * x;
    for (const x of base.subarray(8, 48)) want += x * x;
    want = Math.sqrt(want);
    await gpu!.sync();
    const before = gpu!.engine.dispatches;
    const norm = globalNorm(g);
    expect(gpu!.engine.dispatches - before).toBe(5 + 1); // big, big4, view, view4, small; then the final sum
    expect(Math.abs((await norm.item()) - want) / want).toBeLessThan(1e-6);
    dispose([g, norm]);
  });

  it.skipIf(!gpu)('leaves nothing behind but the norm', async () => {
    const g = grads(6, 'float32', gpuB);
    await gpu!.sync();
    const stats = () => memoryStats().backends.webgpu;
    const before = stats();
    const norm = globalNorm(g);
    expect(stats().tensors - before.tensors).toBe(1);
    expect(stats().storages - before.storages).toBe(1);
    norm.dispose();
    dispose(g);
  });
});

describe('clipFactor', () => {
  it('hand-computed: min(1, maxNorm / (norm + 1e-6))', () => {
    const n = tensor([13], [], { dtype: 'float64' });
    const f = clipFactor(n);
    expect(f.shape).toEqual([]);
    expect(f.itemSync()).toBe(1 / (13 + 1e-6));
    const f2 = clipFactor(n, 26);
    expect(f2.itemSync()).toBe(1);
    const f3 = clipFactor(n, 6.5);
    expect(f3.itemSync()).toBe(6.5 / (13 + 1e-6));
    dispose([n, f, f2, f3]);
  });

  it('names a bad norm or maxNorm', () => {
    const two = tensor([1, 2], [2]);
    expect(throwsNaming(() => clipFactor(two))).toBe('clipFactor: norm must be a one-element tensor, got shape [2]');
    const n = tensor([1], [1]);
    expect(throwsNaming(() => clipFactor(n, -1))).toBe('clipFactor: maxNorm must be a finite number > 0, got -1');
    const i = tensor([1], [1], { dtype: 'int32' });
    expect(throwsNaming(() => clipFactor(i))).toBe('clipFactor: norm must be a float tensor, got int32');
    dispose([two, n, i]);
  });
});

describe('clipGradNorm', () => {
  it('hand-computed: norm 13 clipped to 1 scales by 1/(13 + 1e-6); a norm under the limit leaves the values', () => {
    const g = {
      a: tensor([3, 4], [2], { dtype: 'float64' }),
      b: tensor([12], [1], { dtype: 'float64' }),
      ids: tensor([7], [1], { dtype: 'int32' }),
    };
    const { grads: c, norm } = clipGradNorm(g);
    expect(norm.itemSync()).toBe(13);
    const s = 1 / (13 + 1e-6);
    expect([...c.a.dataSync()]).toEqual([3 * s, 4 * s]);
    expect([...c.b.dataSync()]).toEqual([12 * s]);
    expect([...c.ids.dataSync()]).toEqual([7]);
    expect(c.a).not.toBe(g.a);
    const under = clipGradNorm(g, 20);
    expect([...under.grads.a.dataSync()]).toEqual([3, 4]);
    expect(under.norm.itemSync()).toBe(13);
    // the input is untouched
    expect([...g.a.dataSync()]).toEqual([3, 4]);
    dispose([g, c, norm, under]);
  });

  it('float32: the clipped gradients have norm maxNorm, within 1e-6', async () => {
    const g = grads(2, 'float32', 'cpu', 10);
    const before = await normOf(g);
    expect(before).toBeGreaterThan(100);
    const { grads: c, norm } = clipGradNorm(g, 1);
    expect(Math.abs(norm.itemSync() - before) / before).toBeLessThan(1e-6);
    expect(Math.abs((await normOf(c)) - 1)).toBeLessThan(1e-6);
    expect(c.tag).toBe('grads');
    dispose([g, c, norm]);
  });

  it.skipIf(!gpu)('on WebGPU: the same clipping, without a readback', async () => {
    const g = grads(2, 'float32', gpuB, 10);
    const cpuG = grads(2, 'float32', 'cpu', 10);
    await gpu!.sync();
    const reads = [vi.spyOn(gpu!, 'read'), vi.spyOn(gpu!.engine, 'read')];
    const { grads: c, norm } = clipGradNorm(g, 0.5);
    for (const r of reads) expect(r).not.toHaveBeenCalled();
    for (const r of reads) r.mockRestore();
    const ref = clipGradNorm(cpuG, 0.5);
    const a = floatLeaves(c);
    const e = floatLeaves(ref.grads);
    for (let i = 0; i < a.length; i++) {
      const x = await a[i].data();
      const y = e[i].dataSync();
      for (let j = 0; j < x.length; j++) expect(Math.abs(x[j] - y[j])).toBeLessThan(1e-6 * 0.5);
    }
    expect(Math.abs((await norm.item()) - ref.norm.itemSync()) / ref.norm.itemSync()).toBeLessThan(1e-6);
    dispose([g, cpuG, c, norm, ref]);
  });

  it('a NaN gradient makes the norm and the clipped gradients NaN', () => {
    const g = { a: tensor([Number.NaN, 1], [2]), b: tensor([1], [1]) };
    const { grads: c, norm } = clipGradNorm(g);
    expect(Number.isNaN(norm.itemSync())).toBe(true);
    expect(Number.isNaN(c.b.itemSync())).toBe(true);
    dispose([g, c, norm]);
  });

  it('leaves only its results alive', () => {
    const g = grads(3, 'float32');
    const before = memoryStats().backends.cpu.tensors;
    const out = clipGradNorm(g);
    expect(memoryStats().backends.cpu.tensors - before).toBe(5 + 1 + 1); // 5 float leaves, the int alias, the norm
    dispose(out);
    expect(memoryStats().backends.cpu.tensors).toBe(before);
    dispose(g);
  });

  it('names a bad maxNorm, a tree without floats, a disposed leaf and mixed backends', () => {
    const g = { a: tensor([1, 2], [2]) };
    expect(throwsNaming(() => clipGradNorm(g, 0))).toBe('clipGradNorm: maxNorm must be a finite number > 0, got 0');
    expect(throwsNaming(() => clipGradNorm(g, Number.NaN))).toBe('clipGradNorm: maxNorm must be a finite number > 0, got NaN');
    expect(throwsNaming(() => globalNorm({ ids: tensor([1], [1], { dtype: 'int32' }), n: 3 }))).toBe(
      'globalNorm: grads holds no float tensor',
    );
    const gone = tensor([1], [1]);
    gone.dispose();
    expect(throwsNaming(() => globalNorm({ layers: [{ w: gone }] }))).toBe('globalNorm: grads.layers[0].w has been disposed');
    dispose(g);
  });

  it.skipIf(!gpu)('names leaves on different backends', () => {
    const g = { a: tensor([1], [1]), b: [tensor([1], [1], { backend: gpuB })] };
    expect(throwsNaming(() => clipGradNorm(g))).toBe('clipGradNorm: grads.b[0] lives on webgpu but grads.a on cpu');
    dispose(g);
  });
});

describe('gradient accumulation', () => {
  it('addTrees and scaleTree: hand-computed values; structure and other leaves kept', () => {
    const a = {
      w: tensor([1, 2], [2], { dtype: 'float64' }),
      m: new Map([['k', tensor([3], [1], { dtype: 'float64' })]]),
      ids: tensor([5], [1], { dtype: 'int32' }),
      tag: 'a',
    };
    const b = {
      w: tensor([10, 20], [2], { dtype: 'float64' }),
      m: new Map([['k', tensor([30], [1], { dtype: 'float64' })]]),
      ids: tensor([6], [1], { dtype: 'int32' }),
      tag: 'b',
    };
    const s = addTrees(a, b);
    expect([...s.w.dataSync()]).toEqual([11, 22]);
    expect([...s.m.get('k')!.dataSync()]).toEqual([33]);
    expect([...s.ids.dataSync()]).toEqual([5]); // non-float leaves: a's
    expect(s.tag).toBe('a');
    const h = scaleTree(s, 0.5);
    expect([...h.w.dataSync()]).toEqual([5.5, 11]);
    const byTensor = scaleTree(s, tensor([2], [1], { dtype: 'float32' })); // cast to the leaves' dtype
    expect([...byTensor.m.get('k')!.dataSync()]).toEqual([66]);
    expect([...a.w.dataSync()]).toEqual([1, 2]); // inputs untouched
    dispose([a, b, s, h, byTensor]);
  });

  it('name structure mismatches and bad scales', () => {
    const a = { layers: [{ w: tensor([1], [1]) }] };
    const b = { layers: [{ w: tensor([1, 2], [2]) }] };
    expect(throwsNaming(() => addTrees(a, b))).toBe('addTrees: b.layers[0].w has shape [2] but a.layers[0].w has [1]');
    expect(throwsNaming(() => scaleTree(a, Number.POSITIVE_INFINITY))).toBe(
      'scaleTree: s must be a finite number or a tensor, got Infinity',
    );
    const two = tensor([1, 2], [2]);
    expect(throwsNaming(() => scaleTree(a, two))).toBe('scaleTree: s must be a number or a one-element tensor, got shape [2]');
    dispose([a, b, two]);
  });

  it('accumulateGrads disposes the previous sum and the new gradients; memory stays flat', () => {
    const snapshot = () => memoryStats().backends.cpu.tensors;
    const start = snapshot();
    let acc: G | undefined;
    const first = grads(4, 'float64');
    acc = accumulateGrads(acc, first);
    expect(acc).toBe(first); // the first gradients are taken as they are
    const after1 = snapshot();
    for (let i = 0; i < 20; i++) {
      const g = grads(5 + i, 'float64');
      const prev: G = acc;
      acc = accumulateGrads(acc, g);
      expect(floatLeaves(prev).every((t) => t.isDisposed) && floatLeaves(g).every((t) => t.isDisposed)).toBe(true);
      expect(snapshot()).toBe(after1);
    }
    dispose(acc);
    expect(snapshot()).toBe(start);
  });

  it('the mean of micro-batch gradients equals the gradient of the whole batch', async () => {
    // least squares on 8 rows: the mean loss over the batch is the mean of the two 4-row losses
    const x = tensor(uniformValues(8 * 3, 1), [8, 3], { dtype: 'float64' });
    const y = tensor(uniformValues(8 * 2, 2), [8, 2], { dtype: 'float64' });
    type Lin = { w: Tensor; b: Tensor };
    const params: Lin = {
      w: tensor(uniformValues(6, 3), [3, 2], { dtype: 'float64' }),
      b: tensor(uniformValues(2, 4), [2], { dtype: 'float64' }),
    };
    const loss = (p: Lin, xb: Tensor, yb: Tensor) => {
      const d = sub(matmul(xb, p.w).add(p.b), yb);
      return mean(mul(d, d));
    };
    const vg = valueAndGrad(loss);
    const whole = vg(params, x, y);
    let acc: Lin | undefined;
    for (const start of [0, 4]) {
      const xb = narrow(x, 0, start, 4);
      const yb = narrow(y, 0, start, 4);
      const { value, grads: g } = vg(params, xb, yb);
      acc = accumulateGrads(acc, g);
      dispose([value, xb, yb]);
    }
    const avg = scaleTree(acc as Lin, 1 / 2);
    for (const k of ['w', 'b'] as const) {
      const got = avg[k].dataSync();
      const want = whole.grads[k].dataSync();
      for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThan(1e-14);
    }
    dispose([x, y, params, whole, acc, avg]);
  });
});
