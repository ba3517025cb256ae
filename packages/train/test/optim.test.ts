import {
  type Backend,
  type DType,
  dispose,
  FoxgateError,
  loadSafetensors,
  memoryStats,
  narrow,
  parseSafetensors,
  safetensorsBytes,
  type Tensor,
  tensor,
  transpose,
  type WebGPUBackend,
  zeros,
} from '@foxgate/tensor';
import { destroyTestWebGPU, testWebGPU } from '@foxgate/testing';
import { afterAll, describe, expect, it, vi } from 'vitest';
import {
  type AdamWOptions,
  type AdamWState,
  accumulateGrads,
  adamw,
  adamwStateFromTensors,
  adamwStateTensors,
  clipFactor,
  clipGradNorm,
  defaultDecayMask,
  flattenTree,
  globalNorm,
  scaleTree,
  unflattenTree,
} from '../src/index.js';
import { signedValues, throwsNaming } from './util/optim.js';

const gpu = (await testWebGPU()) as unknown as WebGPUBackend | null;
const gpuB = gpu as unknown as Backend;
afterAll(destroyTestWebGPU);

// ---- data -----------------------------------------------------------------------------------------

/**
 * A model-shaped tree: matrices (decayed by default), 1-D norm weights and biases (not), sizes
 * that are not multiples of the 256-thread workgroup, sizes that are multiples of 4 (the WebGPU
 * kernel's vec4 path) and sizes that are not, parameters that are offset views (`head`: offset
 * 21, `head4`: offset 16) and transposed views (`tied`, `tied4`: not contiguous).
 */
interface Net {
  model: {
    embeddings: { weight: Tensor };
    layers: { attn: { fgate_proj: { weight: Tensor; bias: Tensor } }; mlp_norm: { weight: Tensor } }[];
    norm: { weight: Tensor };
  };
  head: Tensor;
  head4: Tensor;
  tied: Tensor;
  tied4: Tensor;
}
const SHAPES: [string, number[], number][] = [
  ['model.embeddings.weight', [97, 13], 1],
  ['model.layers.0.attn.fgate_proj.weight', [4, 13], 10],
  ['model.layers.0.attn.fgate_proj.bias', [4], 1e-3], // small gradients: eps matters
  ['model.layers.0.mlp_norm.weight', [13], 0.1],
  ['model.layers.1.attn.fgate_proj.weight', [40, 13], 1],
  ['model.layers.1.attn.fgate_proj.bias', [4], 1],
  ['model.layers.1.mlp_norm.weight', [13], 1],
  ['model.norm.weight', [13], 1],
  ['head', [5, 7], 1],
  ['head4', [4, 8], 1],
  ['tied', [7, 6], 1],
  ['tied4', [6, 4], 1],
];
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** `length` elements of `base` from element `start` (a contiguous view with an offset); disposes `base`. */
function offsetView(base: Tensor, start: number, length: number): Tensor {
  const v = narrow(base, 0, start, length);
  base.dispose();
  return v;
}

/** Rows `start..` of a `[rows, cols]` tensor holding `d` there: a contiguous view with an offset. */
function rowsView(d: Float64Array, [n, cols]: number[], start: number, dtype: DType, backend: string | Backend): Tensor {
  const big = new Float64Array((start + n + 2) * cols);
  big.set(d, start * cols);
  return offsetView(tensor(big, [start + n + 2, cols], { dtype, backend }), start, n);
}

/** The transpose of a `[cols, rows]` tensor holding `d` in `[rows, cols]` row-major order. */
function transposedView(d: Float64Array, [rows, cols]: number[], dtype: DType, backend: string | Backend): Tensor {
  const t = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = d[r * cols + c];
  const base = tensor(t, [cols, rows], { dtype, backend });
  const v = transpose(base);
  base.dispose();
  return v;
}

/** The tree holding `data(i)` at leaf i, as `dtype` on `backend`. */
function makeNet(data: (i: number) => Float64Array, dtype: DType, backend: string | Backend = 'cpu'): Net {
  const leaves = SHAPES.map(([name, shape], i) => {
    if (name === 'head') return rowsView(data(i), shape, 3, dtype, backend); // offset 21
    if (name === 'head4') return rowsView(data(i), shape, 2, dtype, backend); // offset 16
    if (name === 'tied' || name === 'tied4') return transposedView(data(i), shape, dtype, backend);
    return tensor(data(i), shape, { dtype, backend });
  });
  const flat = new Map(SHAPES.map(([name], i) => [name, leaves[i]]));
  return unflattenTree<Net>(flat);
}
const paramData = (i: number) => signedValues(size(SHAPES[i][1]), 10 + i);
const gradData = (step: number) => (i: number) => signedValues(size(SHAPES[i][1]), 1000 * (step + 1) + i, SHAPES[i][2]);

/** Every leaf's data in SHAPES order (row-major, whatever the view). */
async function read(net: Net): Promise<number[][]> {
  const flat = flattenTree(net);
  return Promise.all(SHAPES.map(async ([name]) => [...(await flat.get(name)!.data())]));
}

/** `steps` updates from `makeNet(paramData)`; returns the data of params, m and v. */
async function run(opts: AdamWOptions, steps: number, dtype: DType, backend: string | Backend = 'cpu') {
  const opt = adamw<Net>(opts);
  let params = makeNet(paramData, dtype, backend);
  let state = opt.init(params);
  for (let s = 0; s < steps; s++) {
    const grads = makeNet(gradData(s), dtype, backend);
    ({ params, state } = opt.updateAndDispose(params, grads, state));
    dispose(grads);
  }
  const out = { p: await read(params), m: await read(state.m), v: await read(state.v) };
  dispose([params, state]);
  return out;
}

/** Largest |a − e| / max(|e|, floor · max|e| of the leaf) over all leaves (floor 1: norm-wise per leaf). */
function maxRel(actual: number[][], expected: number[][], floor: number): number {
  let worst = 0;
  actual.forEach((a, l) => {
    const e = expected[l];
    expect(a.length).toBe(e.length);
    const scale = Math.max(...e.map(Math.abs));
    a.forEach((x, i) => {
      worst = Math.max(worst, Math.abs(x - e[i]) / Math.max(Math.abs(e[i]), floor * scale));
    });
  });
  return worst;
}

const lr = (t: number) => 0.02 * Math.min(1, t / 2);
const OPTS: AdamWOptions = { lr, eps: 1e-6 };
const STEPS = 4;

// ---- fused vs composed ----------------------------------------------------------------------------

describe('adamw fused step vs the composed ops', () => {
  it('float64 on the CPU: the fused loop equals the composed ops within 1e-13', async () => {
    const fused = await run(OPTS, STEPS, 'float64');
    const composed = await run({ ...OPTS, impl: 'composed' }, STEPS, 'float64');
    expect(maxRel(fused.p, composed.p, 0)).toBeLessThan(1e-13);
    expect(maxRel(fused.m, composed.m, 0)).toBeLessThan(1e-13);
    expect(maxRel(fused.v, composed.v, 0)).toBeLessThan(1e-13);
    // the update did something, and weight decay acted on the matrices only
    expect(
      maxRel(
        fused.p,
        SHAPES.map((_, i) => [...paramData(i)]),
        0,
      ),
    ).toBeGreaterThan(1e-2);
  });

  it('float32 on the CPU: the fused loop is within 1e-6 relative of the composed float64 math', async () => {
    const f64 = await run({ ...OPTS, impl: 'composed' }, STEPS, 'float64');
    const f32 = await run(OPTS, STEPS, 'float32');
    expect(maxRel(f32.p, f64.p, 0)).toBeLessThan(1e-6);
    // moments relative to each leaf's largest one (single entries may cancel to near 0 in float32)
    expect(maxRel(f32.m, f64.m, 1)).toBeLessThan(1e-6);
    expect(maxRel(f32.v, f64.v, 1)).toBeLessThan(1e-6);
  });

  it.skipIf(!gpu)('float32 on WebGPU: the kernel is within 1e-6 relative of the composed float64 math', async () => {
    const f64 = await run({ ...OPTS, impl: 'composed' }, STEPS, 'float64');
    const onGpu = await run(OPTS, STEPS, 'float32', gpuB);
    expect(maxRel(onGpu.p, f64.p, 0)).toBeLessThan(1e-6);
    expect(maxRel(onGpu.m, f64.m, 1)).toBeLessThan(1e-6);
    expect(maxRel(onGpu.v, f64.v, 1)).toBeLessThan(1e-6);
    // and the composed ops on WebGPU agree with it
    const composed = await run({ ...OPTS, impl: 'composed' }, STEPS, 'float32', gpuB);
    expect(maxRel(onGpu.p, composed.p, 0)).toBeLessThan(1e-6);
  });

  it.skipIf(!gpu)('on WebGPU one update is one dispatch per parameter, with no readback', async () => {
    type Flat = { a: Tensor; b: Tensor; c: Tensor; ids: Tensor };
    const f32 = { dtype: 'float32', backend: gpuB } as const;
    const make = (seed: number): Flat => ({
      a: tensor(signedValues(3000, seed), [30, 100], f32),
      b: tensor(signedValues(7, seed + 1), [7], f32),
      c: offsetView(tensor(signedValues(12, seed + 2), [12], f32), 5, 4),
      ids: tensor([1, 2], [2], { dtype: 'int32', backend: gpuB }),
    });
    const params = make(1);
    const grads = make(2);
    const opt = adamw<Flat>({ lr: 1e-3 });
    const state = opt.init(params);
    await gpu!.sync();
    const reads = [vi.spyOn(gpu!, 'read'), vi.spyOn(gpu!.engine, 'read')];
    const before = gpu!.engine.dispatches;
    const out = opt.update(params, grads, state);
    expect(gpu!.engine.dispatches - before).toBe(3); // a, b, c; the int32 leaf is aliased
    for (const r of reads) expect(r).not.toHaveBeenCalled();
    for (const r of reads) r.mockRestore();
    // the offset view was read at its offset: compare with the CPU
    const cpuOut = adamw<{ c: Tensor }>({ lr: 1e-3 }).update(
      { c: tensor(await params.c.data(), [4], { dtype: 'float32' }) },
      { c: tensor(await grads.c.data(), [4], { dtype: 'float32' }) },
      { step: 0, m: { c: zeros([4]) }, v: { c: zeros([4]) } },
    );
    expect(maxRel([[...(await out.params.c.data())]], [[...cpuOut.params.c.dataSync()]], 0)).toBeLessThan(1e-6);
    dispose([params, grads, state, out, cpuOut]);
  });
});

// ---- two steps by hand ------------------------------------------------------------------------------

describe('adamw: two steps computed by hand', () => {
  // lr 0.1, weight decay 0.1, β 0.9/0.95, eps 1e-8; a [1,1] matrix (decayed) and a [1] bias (not)
  // start at 2 and get gradients 0.5, then −1.
  //   t=1: m = 0.1·0.5 = 0.05, v = 0.05·0.25 = 0.0125, m̂ = 0.05/0.1 = 0.5, v̂ = 0.0125/0.05 = 0.25
  //   t=2: m = 0.9·0.05 − 0.1 = −0.055, v = 0.95·0.0125 + 0.05 = 0.061875, m̂ = −0.055/0.19, v̂ = 0.061875/0.0975
  const w1 = 2 * (1 - 0.1 * 0.1) - (0.1 * 0.5) / (0.5 + 1e-8);
  const w2 = w1 * (1 - 0.1 * 0.1) - (0.1 * (-0.055 / 0.19)) / (Math.sqrt(0.061875 / 0.0975) + 1e-8);
  const b1 = 2 - (0.1 * 0.5) / (0.5 + 1e-8);
  const b2 = b1 - (0.1 * (-0.055 / 0.19)) / (Math.sqrt(0.061875 / 0.0975) + 1e-8);

  const twoSteps = async (dtype: DType, backend: string | Backend, impl: 'fused' | 'composed') => {
    type P = { w: Tensor; b: Tensor };
    const opt = adamw<P>({ lr: 0.1, impl });
    const t = (x: number, shape: number[]) => tensor([x], shape, { dtype, backend });
    let params: P = { w: t(2, [1, 1]), b: t(2, [1]) };
    let state = opt.init(params);
    const seen: number[][] = [];
    for (const g of [0.5, -1]) {
      const grads = { w: t(g, [1, 1]), b: t(g, [1]) };
      ({ params, state } = opt.updateAndDispose(params, grads, state));
      seen.push([await params.w.item(), await params.b.item(), await state.m.w.item(), await state.v.b.item()]);
      dispose(grads);
    }
    dispose([params, state]);
    return seen;
  };
  const want = [
    [w1, b1, 0.05, 0.0125],
    [w2, b2, -0.055, 0.061875],
  ];

  for (const impl of ['fused', 'composed'] as const) {
    it(`float64 on the CPU (${impl})`, async () => {
      const got = await twoSteps('float64', 'cpu', impl);
      for (let s = 0; s < 2; s++) for (let k = 0; k < 4; k++) expect(got[s][k]).toBeCloseTo(want[s][k], 14);
    });
  }

  it.skipIf(!gpu)('float32 on WebGPU (fused)', async () => {
    const got = await twoSteps('float32', gpuB, 'fused');
    for (let s = 0; s < 2; s++)
      for (let k = 0; k < 4; k++) expect(Math.abs(got[s][k] - want[s][k]) / Math.abs(want[s][k])).toBeLessThan(1e-6);
  });
});

// ---- gradScale: clipping inside the step ---------------------------------------------------------

describe('adamw gradScale (the clip factor applied inside the step)', () => {
  /** `steps` updates where each step's gradients are scaled by `s(step)`: inside the step, or before it. */
  const scaledRun = async (dtype: DType, backend: string | Backend, impl: 'fused' | 'composed', inside: boolean) => {
    const opt = adamw<Net>({ ...OPTS, impl });
    let params = makeNet(paramData, dtype, backend);
    let state = opt.init(params);
    for (let s = 0; s < 3; s++) {
      const grads = makeNet(gradData(s), dtype, backend);
      const factor = tensor([0.25 + 0.5 * s], [], { dtype, backend });
      if (inside) ({ params, state } = opt.updateAndDispose(params, grads, state, { gradScale: factor }));
      else {
        const scaled = scaleTree(grads, factor);
        ({ params, state } = opt.updateAndDispose(params, scaled, state));
        dispose(scaled);
      }
      dispose([grads, factor]);
    }
    const out = { p: await read(params), m: await read(state.m), v: await read(state.v) };
    dispose([params, state]);
    return out;
  };

  it('on the CPU: scaling inside the fused step equals scaling the gradients first', async () => {
    const want = await scaledRun('float64', 'cpu', 'composed', false);
    for (const impl of ['fused', 'composed'] as const) {
      const got = await scaledRun('float64', 'cpu', impl, true);
      expect(maxRel(got.p, want.p, 0)).toBeLessThan(1e-13);
      expect(maxRel(got.m, want.m, 0)).toBeLessThan(1e-13);
    }
    const f32 = await scaledRun('float32', 'cpu', 'fused', true);
    expect(maxRel(f32.p, want.p, 0)).toBeLessThan(1e-6);
  });

  it.skipIf(!gpu)('on WebGPU: the same within 1e-6 of the float64 math', async () => {
    const want = await scaledRun('float64', 'cpu', 'composed', false);
    const got = await scaledRun('float32', gpuB, 'fused', true);
    expect(maxRel(got.p, want.p, 0)).toBeLessThan(1e-6);
    expect(maxRel(got.m, want.m, 1)).toBeLessThan(1e-6);
    expect(maxRel(got.v, want.v, 1)).toBeLessThan(1e-6);
  });

  it.skipIf(!gpu)('a WebGPU step with clipping: norm (leaves + 1), factor, AdamW (one per leaf), no readback', async () => {
    type Flat = { a: Tensor; b: Tensor; c: Tensor };
    const f32 = { dtype: 'float32', backend: gpuB } as const;
    const make = (seed: number, scale = 1): Flat => ({
      a: tensor(signedValues(3000, seed, scale), [30, 100], f32),
      b: tensor(signedValues(7, seed + 1, scale), [7], f32),
      c: tensor(signedValues(12, seed + 2, scale), [3, 4], f32),
    });
    const params = make(1);
    const grads = make(2, 10); // norm ≈ 550: clipped to 1
    const opt = adamw<Flat>({ lr: 1e-3 });
    const state = opt.init(params);
    await gpu!.sync();
    const reads = [vi.spyOn(gpu!, 'read'), vi.spyOn(gpu!.engine, 'read')];
    const d0 = gpu!.engine.dispatches;
    const norm = globalNorm(grads);
    const d1 = gpu!.engine.dispatches;
    const factor = clipFactor(norm, 1);
    const d2 = gpu!.engine.dispatches;
    const out = opt.update(params, grads, state, { gradScale: factor });
    const d3 = gpu!.engine.dispatches;
    for (const r of reads) expect(r).not.toHaveBeenCalled();
    for (const r of reads) r.mockRestore();
    expect(d1 - d0).toBe(3 + 1);
    expect(d2 - d1).toBeLessThanOrEqual(6); // add, div, minimum and their scalar fills
    expect(d3 - d2).toBe(3);
    // the same step on the CPU
    const host = async (t: Flat): Promise<Flat> => ({
      a: tensor(await t.a.data(), [30, 100], { dtype: 'float32' }),
      b: tensor(await t.b.data(), [7], { dtype: 'float32' }),
      c: tensor(await t.c.data(), [3, 4], { dtype: 'float32' }),
    });
    const [hp, hg] = [await host(params), await host(grads)];
    const hn = globalNorm(hg);
    const hf = clipFactor(hn, 1);
    expect(hf.itemSync()).toBeLessThan(0.01);
    const hs = opt.init(hp);
    const ref = opt.update(hp, hg, hs, { gradScale: hf });
    const got = await host(out.params);
    for (const k of ['a', 'b', 'c'] as const) {
      expect(maxRel([[...got[k].dataSync()]], [[...ref.params[k].dataSync()]], 0), k).toBeLessThan(1e-6);
    }
    dispose([params, grads, state, norm, factor, out, hp, hg, hn, hf, hs, ref, got]);
  });

  it('names a bad gradScale', () => {
    const opt = adamw<{ w: Tensor }>({ lr: 1e-3 });
    const p = { w: zeros([2]) };
    const s = opt.init(p);
    const msg = (o: unknown) => throwsNaming(() => opt.update(p, p, s, o as { gradScale: Tensor }));
    const two = zeros([2]);
    const ints = zeros([1], { dtype: 'int32' });
    expect(msg({ gradScale: 0.5 })).toBe('adamw: gradScale must be a one-element float tensor, got 0.5');
    expect(msg({ gradScale: two })).toBe('adamw: gradScale must be a one-element float tensor, got float32[2]');
    expect(msg({ gradScale: ints })).toBe('adamw: gradScale must be a one-element float tensor, got int32[1]');
    expect(msg({ scale: two })).toBe('adamw: unknown update option "scale" (the option is gradScale)');
    dispose([p, s, two, ints]);
  });

  it.skipIf(!gpu)('names a gradScale on another backend than a parameter', () => {
    const opt = adamw<{ layers: { w: Tensor }[] }>({ lr: 1e-3 });
    const p = { layers: [{ w: zeros([2]) }] };
    const s = opt.init(p);
    const gs = zeros([], { backend: gpuB });
    expect(() => opt.update(p, p, s, { gradScale: gs })).toThrow('adamw: gradScale lives on webgpu but params.layers[0].w on cpu');
    dispose([p, s, gs]);
  });
});

// ---- weight-decay mask ----------------------------------------------------------------------------

describe('adamw weight-decay mask', () => {
  // With zero gradients the Adam term is 0/(0 + eps) = 0, so a step is p·(1 − lr·wd) exactly
  // where the leaf is decayed, and p where it is not.
  const zeroGrads = (dtype: DType) => makeNet((i) => new Float64Array(size(SHAPES[i][1])), dtype);

  it('by default decays matrices only: not norm weights, biases, the forget-gate bias', async () => {
    const opt = adamw<Net>({ lr: 0.01 }); // weightDecay 0.1 by default
    const params = makeNet(paramData, 'float64');
    const grads = zeroGrads('float64');
    const state = opt.init(params);
    const out = opt.update(params, grads, state);
    const got = await read(out.params);
    SHAPES.forEach(([name, shape], i) => {
      const factor = shape.length >= 2 ? 1 - 0.01 * 0.1 : 1;
      const want = [...paramData(i)].map((x) => x * factor);
      expect(maxRel([got[i]], [want], 0), name).toBeLessThan(1e-15);
    });
    expect(defaultDecayMask('model.layers.0.attn.fgate_proj.bias', flattenTree(params).get('model.layers.0.attn.fgate_proj.bias')!)).toBe(
      false,
    );
    expect(defaultDecayMask('model.embeddings.weight', params.model.embeddings.weight)).toBe(true);
    dispose([params, grads, state, out]);
  });

  it('a custom rule gets dotted paths (array indices and Map keys as parts) and the tensor', async () => {
    type P = { blocks: Map<string, { w: Tensor }>; layers: { b: Tensor }[]; w: Tensor };
    const make = (): P => ({
      blocks: new Map([['attn', { w: tensor([1, 2], [2], { dtype: 'float64' }) }]]),
      layers: [{ b: tensor([3], [1], { dtype: 'float64' }) }],
      w: tensor([4, 5, 6, 7], [2, 2], { dtype: 'float64' }),
    });
    const calls: [string, number[]][] = [];
    const opt = adamw<P>({
      lr: 0.5,
      weightDecay: 0.2,
      decay: (path, t) => {
        calls.push([path, [...t.shape]]);
        return path.startsWith('blocks.');
      },
    });
    const params = make();
    const grads: P = {
      blocks: new Map([['attn', { w: zeros([2], { dtype: 'float64' }) }]]),
      layers: [{ b: zeros([1], { dtype: 'float64' }) }],
      w: zeros([2, 2], { dtype: 'float64' }),
    };
    const state = opt.init(params);
    const out = opt.update(params, grads, state);
    expect(calls).toEqual([
      ['blocks.attn.w', [2]],
      ['layers.0.b', [1]],
      ['w', [2, 2]],
    ]);
    expect([...out.params.blocks.get('attn')!.w.dataSync()]).toEqual([0.9, 1.8]); // × (1 − 0.5·0.2)
    expect([...out.params.layers[0].b.dataSync()]).toEqual([3]);
    expect([...out.params.w.dataSync()]).toEqual([4, 5, 6, 7]);
    dispose([params, grads, state, out]);
  });

  it('a rule that returns a non-boolean is named with the path, and leaves nothing behind', () => {
    const opt = adamw<{ w: Tensor }>({ lr: 0.1, decay: () => 1 as unknown as boolean });
    const params = { w: zeros([2, 2]) };
    const state = opt.init(params);
    const before = memoryStats().backends.cpu.tensors;
    expect(throwsNaming(() => opt.update(params, params, state))).toBe('adamw: decay("w") returned 1; it must return a boolean');
    expect(memoryStats().backends.cpu.tensors).toBe(before);
    dispose([params, state]);
  });
});

// ---- state ↔ tensors ------------------------------------------------------------------------------

describe('adamw state as named tensors', () => {
  it('names the moments m.<path> / v.<path> and aliases the state tensors', () => {
    const opt = adamw<Net>({ lr: 1e-3 });
    const params = makeNet(paramData, 'float32');
    const state = opt.init(params);
    const named = adamwStateTensors(state);
    expect([...named.keys()]).toEqual([...SHAPES.map(([n]) => `m.${n}`), ...SHAPES.map(([n]) => `v.${n}`)]);
    expect(named.get('m.model.layers.1.attn.fgate_proj.bias')).toBe(state.m.model.layers[1].attn.fgate_proj.bias);
    expect([...adamwStateTensors(state, 'optim.').keys()][0]).toBe('optim.m.model.embeddings.weight');
    dispose([params, state]);
  });

  const roundTrip = async (dtype: DType, backend: string | Backend, loadOn: string | Backend) => {
    const opt = adamw<Net>({ lr, eps: 1e-6 });
    let params = makeNet(paramData, dtype, backend);
    let state = opt.init(params);
    for (let s = 0; s < 3; s++) {
      const g = makeNet(gradData(s), dtype, backend);
      ({ params, state } = opt.updateAndDispose(params, g, state));
      dispose(g);
    }
    // checkpoint: parameters and moments in one safetensors file, the step in its metadata
    const record = Object.fromEntries([...flattenTree(params, 'param')].map(([k, t]) => [`${k}`, t]));
    for (const [k, t] of adamwStateTensors(state, 'optim.')) record[k] = t;
    const bytes = await safetensorsBytes(record, { step: String(state.step) });
    const loaded = await loadSafetensors(bytes, { backend: loadOn });
    const step = Number(parseSafetensors(bytes).metadata.step);
    const params2Flat = new Map(SHAPES.map(([n]) => [n, loaded[`param.${n}`]]));
    const params2 = unflattenTree<Net>(params2Flat);
    let state2: AdamWState<Net> = adamwStateFromTensors(params2, loaded, step, 'optim.');
    let p2: Net = params2;
    if (params2.head.backend !== params.head.backend) throw new Error('test setup: parameters must be loaded on their backend');
    // the loaded tensors may be disposed: the state owns its own
    for (const [k, t] of Object.entries(loaded)) if (k.startsWith('optim.')) t.dispose();
    expect(state2.step).toBe(3);
    // three more updates from the original and from the restored state
    for (let s = 3; s < 6; s++) {
      const g = makeNet(gradData(s), dtype, backend);
      ({ params, state } = opt.updateAndDispose(params, g, state));
      ({ params: p2, state: state2 } = opt.updateAndDispose(p2, g, state2));
      dispose(g);
    }
    const [a, b] = [await read(params), await read(p2)];
    const [ma, mb] = [await read(state.m), await read(state2.m)];
    const [va, vb] = [await read(state.v), await read(state2.v)];
    dispose([params, state, p2, state2]);
    return { a, b, ma, mb, va, vb };
  };

  for (const dtype of ['float32', 'float64'] as const) {
    it(`a safetensors round trip gives bit-identical later updates (${dtype}, CPU)`, async () => {
      const r = await roundTrip(dtype, 'cpu', 'cpu');
      expect(r.b).toEqual(r.a);
      expect(r.mb).toEqual(r.ma);
      expect(r.vb).toEqual(r.va);
    });
  }

  it.skipIf(!gpu)('a safetensors round trip gives bit-identical later updates (float32, WebGPU)', async () => {
    const r = await roundTrip('float32', gpuB, gpuB);
    expect(r.b).toEqual(r.a);
    expect(r.mb).toEqual(r.ma);
    expect(r.vb).toEqual(r.va);
  });

  it.skipIf(!gpu)('moments read on the CPU are copied to the parameters on WebGPU', async () => {
    const opt = adamw<{ w: Tensor }>({ lr: 1e-3 });
    const params = { w: tensor(signedValues(6, 3), [2, 3], { dtype: 'float32', backend: gpuB }) };
    const named = new Map([
      ['m.w', tensor(signedValues(6, 4), [2, 3], { dtype: 'float32' })],
      ['v.w', tensor(signedValues(6, 5, 1, 0.5, 1).map(Math.abs), [2, 3], { dtype: 'float32' })],
    ]);
    const state = adamwStateFromTensors(params, named, 7);
    expect(state.m.w.backend).toBe(gpuB);
    expect([...(await state.m.w.data())]).toEqual([...named.get('m.w')!.dataSync()]);
    const next = opt.update(params, { w: tensor(signedValues(6, 6), [2, 3], { dtype: 'float32', backend: gpuB }) }, state);
    expect(next.state.step).toBe(8);
    dispose([params, named, state, next]);
  });

  it('names a missing, unknown or mismatched moment', () => {
    const params = { w: zeros([2, 3]), layers: [{ b: zeros([3]) }] };
    const ok = () =>
      new Map<string, Tensor>([
        ['m.w', zeros([2, 3])],
        ['v.w', zeros([2, 3])],
        ['m.layers.0.b', zeros([3])],
        ['v.layers.0.b', zeros([3])],
        ['param.w', zeros([2, 3])], // other names are ignored
      ]);
    const message = (named: Map<string, Tensor>, step = 1, prefix = ''): string => {
      try {
        adamwStateFromTensors(params, named, step, prefix);
      } catch (e) {
        expect(e).toBeInstanceOf(FoxgateError);
        return (e as Error).message;
      } finally {
        dispose(named);
      }
      throw new Error('expected an error');
    };
    const without = (k: string) => {
      const m = ok();
      m.get(k)!.dispose();
      m.delete(k);
      return m;
    };
    const withEntry = (k: string, t: Tensor) => {
      const m = ok();
      m.get(k)?.dispose();
      return m.set(k, t);
    };
    expect(message(without('v.layers.0.b'))).toBe('adamwStateFromTensors: "v.layers.0.b" is missing');
    expect(message(withEntry('m.layers.1.b', zeros([3])))).toBe('adamwStateFromTensors: "m.layers.1.b" names no parameter');
    expect(message(withEntry('m.w', zeros([3, 2])))).toBe('adamwStateFromTensors: "m.w" has shape [3,2] but its parameter has [2,3]');
    expect(message(withEntry('v.w', zeros([2, 3], { dtype: 'float64' })))).toBe(
      'adamwStateFromTensors: "v.w" has dtype float64 but its parameter has float32',
    );
    expect(message(ok(), -1)).toBe('adamwStateFromTensors: step must be an integer ≥ 0, got -1');
    expect(message(ok(), 1, 'optim.')).toBe('adamwStateFromTensors: "optim.m.w" is missing');
    const before = memoryStats().backends.cpu.tensors;
    const s = adamwStateFromTensors(params, ok(), 2);
    expect(memoryStats().backends.cpu.tensors - before).toBe(5 + 4); // the map (5) and the state's aliases (4)
    dispose(s);
    dispose(params);
  });
});

// ---- memory -----------------------------------------------------------------------------------------

describe('memory over 200 training updates (accumulate two micro-batches, clip, norm, AdamW with gradScale)', () => {
  const loop = async (backend: string | Backend) => {
    const name = typeof backend === 'string' ? backend : backend.name;
    const opt = adamw<Net>({ lr, eps: 1e-6 });
    let params = makeNet(paramData, 'float32', backend);
    let state = opt.init(params);
    const g1 = makeNet(gradData(0), 'float32', backend);
    const g2 = makeNet(gradData(1), 'float32', backend);
    const snapshot = () => {
      const { tensors, storages, bytesInUse, deviceBuffers } = memoryStats().backends[name];
      return { tensors, storages, bytesInUse, deviceBuffers };
    };
    // micro-batch gradients as `valueAndGrad` hands them out: fresh tensors every time
    const clone = (g: Net): Net => unflattenTree<Net>(new Map([...flattenTree(g)].map(([k, t]) => [k, t.mul(1)])));
    const stepOnce = () => {
      let acc: Net | undefined;
      for (const g of [g1, g2]) acc = accumulateGrads(acc, clone(g));
      const { grads, norm } = clipGradNorm(acc as Net, 1);
      // and clipping inside the step (a no-op here: the clipped norm is 1)
      const norm2 = globalNorm(grads);
      const factor = clipFactor(norm2, 2);
      ({ params, state } = opt.updateAndDispose(params, grads, state, { gradScale: factor }));
      dispose([acc, grads, norm, norm2, factor]);
    };
    // warm-up: the pool's buffers settle after the second step (the first frees init's moments)
    for (let i = 0; i < 3; i++) stepOnce();
    if (typeof backend !== 'string') await backend.sync();
    const before = snapshot();
    const seen: ReturnType<typeof snapshot>[] = [];
    for (let i = 0; i < 200; i++) {
      stepOnce();
      if (i % 20 === 19) seen.push(snapshot());
    }
    const last = snapshot();
    const p = await read(params);
    dispose([params, state, g1, g2]);
    return { before, seen, last, finite: p.every((l) => l.every(Number.isFinite)) };
  };

  it('on the CPU: live tensors, storages and bytes stay flat', async () => {
    const r = await loop('cpu');
    for (const s of r.seen) expect(s).toEqual(r.before);
    expect(r.last).toEqual(r.before);
    expect(r.finite).toBe(true);
  });

  it.skipIf(!gpu)('on WebGPU: live tensors, storages, bytes and device buffers stay flat', async () => {
    const r = await loop(gpuB);
    for (const s of r.seen) expect(s).toEqual(r.before);
    expect(r.last).toEqual(r.before);
    expect(r.finite).toBe(true);
  });
});
