import { valueAndGrad } from '@foxgate/autograd';
import { type Backend, type DType, dispose, matmul, mean, memoryStats, mul, sub, type Tensor, tensor, tidy, zeros } from '@foxgate/tensor';
import { destroyTestWebGPU, testWebGPU } from '@foxgate/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { type AdamWOptions, type AdamWState, adamw, defaultDecayMask } from '../src/index.js';
import { signedValues, throwsNaming } from './util/optim.js';

const gpu = (await testWebGPU()) as unknown as Backend | null;
afterAll(destroyTestWebGPU);

// ---- data and a plain-JS float64 reference ----------------------------------------------------

/** The leaves of the test tree: name, shape, and the scale of their gradients. */
const LEAVES = [
  { name: 'layers[0].w', path: 'layers.0.w', shape: [2, 3], gradScale: 1 },
  { name: 'layers[0].b', path: 'layers.0.b', shape: [3], gradScale: 1e-3 }, // small gradients: eps matters
  { name: 'layers[1].w', path: 'layers.1.w', shape: [3, 2], gradScale: 10 },
  { name: 'scale', path: 'scale', shape: [1], gradScale: 0.1 },
] as const;
const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

interface Net {
  layers: [{ w: Tensor; b: Tensor }, { w: Tensor }];
  scale: Tensor;
  name: string;
}

/** Flat float64 data of the parameters and of the gradients of steps 0, 1, 2, ... */
const paramData = LEAVES.map((l, i) => signedValues(size(l.shape), 10 + i));
const gradData = (step: number) =>
  LEAVES.map((l, i) => signedValues(size(l.shape), 100 * (step + 1) + i).map((x) => Math.fround(x * l.gradScale)));

function makeNet(data: ArrayLike<number>[], dtype: DType, backend: string | Backend = 'cpu'): Net {
  const t = (i: number) => tensor(Float64Array.from(data[i]), LEAVES[i].shape, { dtype, backend });
  return { layers: [{ w: t(0), b: t(1) }, { w: t(2) }], scale: t(3), name: 'net' };
}
const leavesOf = (n: Net): Tensor[] => [n.layers[0].w, n.layers[0].b, n.layers[1].w, n.scale];

/** Whether leaf `l` is decayed under `opts` (the default mask: rank ≥ 2), asked with a stand-in tensor. */
const decays = (opts: AdamWOptions, l: (typeof LEAVES)[number]) =>
  (opts.decay ?? defaultDecayMask)(l.path, { rank: l.shape.length, shape: l.shape } as unknown as Tensor);

/** The formula of the brief, one element at a time, in float64 (weight decay only where `decays`). */
function reference(opts: AdamWOptions, steps: number) {
  const { beta1: b1 = 0.9, beta2: b2 = 0.95, eps = 1e-8, weightDecay } = opts;
  const p = paramData.map((a) => [...a]);
  const m = p.map((a) => a.map(() => 0));
  const v = p.map((a) => a.map(() => 0));
  for (let step = 0; step < steps; step++) {
    const t = step + 1;
    const lr = typeof opts.lr === 'number' ? opts.lr : opts.lr(t);
    const g = gradData(step);
    for (let l = 0; l < p.length; l++) {
      const wd = decays(opts, LEAVES[l]) ? (weightDecay ?? 0.1) : 0;
      for (let i = 0; i < p[l].length; i++) {
        m[l][i] = b1 * m[l][i] + (1 - b1) * g[l][i];
        v[l][i] = b2 * v[l][i] + (1 - b2) * g[l][i] * g[l][i];
        const mHat = m[l][i] / (1 - b1 ** t);
        const vHat = v[l][i] / (1 - b2 ** t);
        p[l][i] = p[l][i] - lr * (mHat / (Math.sqrt(vHat) + eps) + wd * p[l][i]);
      }
    }
  }
  return { p, m, v };
}

/** Runs `steps` updates with `opts` on the test tree; returns the final tensors' data. */
async function run(opts: AdamWOptions, steps: number, dtype: DType, backend: string | Backend = 'cpu') {
  const opt = adamw<Net>(opts);
  let params = makeNet(paramData, dtype, backend);
  let state = opt.init(params);
  for (let step = 0; step < steps; step++) {
    const grads = makeNet(gradData(step), dtype, backend);
    ({ params, state } = opt.updateAndDispose(params, grads, state));
    dispose(grads);
  }
  const read = (n: Net) => Promise.all(leavesOf(n).map(async (x) => [...(await x.data())]));
  const out = { p: await read(params), m: await read(state.m), v: await read(state.v), step: state.step, params };
  dispose([params, state]);
  return out;
}

/** Largest |a − e| / max(|e|, floor) over nested arrays of the same layout. */
function maxRel(actual: number[][], expected: ArrayLike<number>[], floor = 1): number {
  let worst = 0;
  actual.forEach((a, l) => {
    expect(a.length).toBe(expected[l].length);
    a.forEach((x, i) => {
      const e = expected[l][i];
      worst = Math.max(worst, Math.abs(x - e) / Math.max(Math.abs(e), floor));
    });
  });
  return worst;
}

const schedule = (t: number) => 0.05 * Math.min(1, t / 2) * (1 + 0.1 * Math.cos(t)); // warmup + wobble
const CASES: [string, AdamWOptions][] = [
  ['defaults (lr 1e-3, betas 0.9/0.95, weight decay 0.1 on matrices)', { lr: 1e-3 }],
  [
    'a schedule, weight decay 0.3 on every leaf, eps 1e-3',
    { lr: schedule, beta1: 0.8, beta2: 0.999, eps: 1e-3, weightDecay: 0.3, decay: () => true },
  ],
  ['no weight decay, beta1 0', { lr: 0.02, beta1: 0, weightDecay: 0 }],
  ['decay by path (only layers.1.w), composed ops', { lr: 0.01, decay: (path) => path === 'layers.1.w', impl: 'composed' }],
];

// ---- tests --------------------------------------------------------------------------------------

describe('adamw: float64 on the CPU equals the formula', () => {
  for (const [name, opts] of CASES) {
    it(`three steps, ${name}`, async () => {
      const ref = reference(opts, 3);
      const got = await run(opts, 3, 'float64');
      expect(got.step).toBe(3);
      expect(maxRel(got.p, ref.p, 1)).toBeLessThan(1e-12);
      expect(maxRel(got.m, ref.m, 1e-3)).toBeLessThan(1e-12);
      expect(maxRel(got.v, ref.v, 1e-6)).toBeLessThan(1e-12);
      // the parameters did move
      expect(maxRel(got.p, paramData, 1)).toBeGreaterThan(1e-4);
    });
  }

  it('calls the schedule with the 1-based step, once per update', () => {
    const calls: number[] = [];
    const opt = adamw<Net>({
      lr: (t) => {
        calls.push(t);
        return 1e-3;
      },
    });
    let params = makeNet(paramData, 'float64');
    let state = opt.init(params);
    for (let step = 0; step < 3; step++) {
      const grads = makeNet(gradData(step), 'float64');
      ({ params, state } = opt.updateAndDispose(params, grads, state));
      dispose(grads);
    }
    expect(calls).toEqual([1, 2, 3]);
    dispose([params, state]);
  });
});

describe('adamw: float32 agrees with float64', () => {
  for (const [name, opts] of CASES) {
    it(`three steps, ${name}: within 1e-6 relative`, async () => {
      const f64 = await run(opts, 3, 'float64');
      const f32 = await run(opts, 3, 'float32');
      expect(maxRel(f32.p, f64.p, 0)).toBeLessThan(1e-6);
    });
  }
});

describe('adamw: trees', () => {
  it('keeps the structure: records, arrays, Maps; non-float tensors and other leaves pass through', async () => {
    type P = { blocks: Map<string, { w: Tensor }>; ids: Tensor; list: Tensor[]; tag: string; n: null };
    const make = (w: number[], l: number[]): P => ({
      blocks: new Map([['a', { w: tensor(w, [2], { dtype: 'float64' }) }]]),
      ids: tensor([3, 4], [2], { dtype: 'int32' }),
      list: [tensor(l, [2], { dtype: 'float64' })],
      tag: 'x',
      n: null,
    });
    const params = make([1, 2], [3, 4]);
    const grads = make([0.5, -0.5], [1, 1]);
    const opt = adamw<P>({ lr: 0.1, weightDecay: 0 });
    const state = opt.init(params);
    const { params: next, state: s1 } = opt.update(params, grads, state);
    expect(next.blocks).toBeInstanceOf(Map);
    expect([...next.blocks.keys()]).toEqual(['a']);
    expect(Array.isArray(next.list)).toBe(true);
    expect(next.tag).toBe('x');
    expect(next.n).toBeNull();
    expect(s1.m.tag).toBe('x');
    expect(s1.step).toBe(1);
    // first step of Adam: m̂/√v̂ = sign(g), so p moves by lr (up to eps) against the gradient
    expect(maxRel([[...(await next.blocks.get('a')!.w.data())]], [[0.9, 2.1]])).toBeLessThan(1e-7);
    expect(maxRel([[...(await next.list[0].data())]], [[2.9, 3.9]])).toBeLessThan(1e-7);
    // the int32 leaf is not optimised: same values, a new tensor
    expect(next.ids).not.toBe(params.ids);
    expect(next.ids.dtype).toBe('int32');
    expect([...(await next.ids.data())]).toEqual([3, 4]);
    // update neither modifies nor disposes its inputs
    expect([...(await params.blocks.get('a')!.w.data())]).toEqual([1, 2]);
    expect(params.ids.isDisposed || grads.ids.isDisposed || state.m.ids.isDisposed).toBe(false);
    dispose([params, grads, state, next, s1]);
  });

  it('updateAndDispose disposes the old params and moments but not the gradients', () => {
    const opt = adamw<Net>({ lr: 1e-3 });
    const params = makeNet(paramData, 'float32');
    const grads = makeNet(gradData(0), 'float32');
    const state = opt.init(params);
    const out = opt.updateAndDispose(params, grads, state);
    expect(leavesOf(params).every((t) => t.isDisposed)).toBe(true);
    expect([...leavesOf(state.m), ...leavesOf(state.v)].every((t) => t.isDisposed)).toBe(true);
    expect(leavesOf(grads).some((t) => t.isDisposed)).toBe(false);
    expect([...leavesOf(out.params), ...leavesOf(out.state.m)].some((t) => t.isDisposed)).toBe(false);
    dispose([grads, out]);
  });
});

describe('adamw: minimises a quadratic with valueAndGrad', () => {
  const fit = async (backend: string | Backend) => {
    // least squares y = x·W + b with an exact solution
    const x = tensor(Float32Array.from(signedValues(16 * 4, 7, 1, 0, 1)), [16, 4], { backend });
    const wTrue = tensor(Float32Array.from(signedValues(4 * 2, 8)), [4, 2], { backend });
    const y = matmul(x, wTrue);
    type Lin = { w: Tensor; b: Tensor };
    const loss = (p: Lin) => {
      const d = sub(matmul(x, p.w).add(p.b), y);
      return mean(mul(d, d));
    };
    const vg = valueAndGrad(loss);
    const steps = 200;
    const opt = adamw<Lin>({ lr: (t) => 0.1 * 0.5 * (1 + Math.cos((Math.PI * t) / steps)), weightDecay: 0 });
    let params: Lin = { w: zeros([4, 2], { backend }), b: zeros([2], { backend }) };
    let state: AdamWState<Lin> = opt.init(params);
    const losses: number[] = [];
    for (let i = 0; i < steps; i++) {
      const { value, grads } = vg(params);
      ({ params, state } = opt.updateAndDispose(params, grads, state));
      dispose(grads);
      if (i % 20 === 0 || i === steps - 1) losses.push(await value.item());
      value.dispose();
    }
    dispose([params, state, x, wTrue, y]);
    return losses;
  };

  it('on the CPU: the loss falls below 1e-4 in 200 steps', async () => {
    const losses = await fit('cpu');
    expect(losses[0]).toBeGreaterThan(0.5);
    expect(losses[losses.length - 1]).toBeLessThan(1e-4);
  });

  it.skipIf(!gpu)('on WebGPU: the loss falls below 1e-4 in 200 steps', async () => {
    const losses = await fit(gpu as Backend);
    expect(losses[0]).toBeGreaterThan(0.5);
    expect(losses[losses.length - 1]).toBeLessThan(1e-4);
  });
});

describe.skipIf(!gpu)('adamw on WebGPU (float32)', () => {
  for (const [name, opts] of CASES) {
    it(`three steps, ${name}: equals the float64 formula within 1e-5 relative`, async () => {
      const got = await run(opts, 3, 'float32', gpu as Backend);
      expect(got.params.scale.backend.name).toBe('webgpu');
      expect(maxRel(got.p, reference(opts, 3).p, 0)).toBeLessThan(1e-5);
    });
  }
});

describe('adamw: errors', () => {
  it('names the option and the value', () => {
    const bad: [AdamWOptions, string][] = [
      [{ lr: 0 }, 'adamw: lr must be a finite number > 0 or a schedule function, got 0'],
      [{ lr: -1e-3 }, 'adamw: lr must be a finite number > 0 or a schedule function, got -0.001'],
      [{ lr: Number.NaN }, 'adamw: lr must be a finite number > 0 or a schedule function, got NaN'],
      [{ lr: Number.POSITIVE_INFINITY }, 'adamw: lr must be a finite number > 0 or a schedule function, got Infinity'],
      [{} as AdamWOptions, 'adamw: lr must be a finite number > 0 or a schedule function, got undefined'],
      [{ lr: '0.1' as unknown as number }, 'adamw: lr must be a finite number > 0 or a schedule function, got "0.1"'],
      [{ lr: 1e-3, beta1: 1 }, 'adamw: beta1 must be in [0, 1), got 1'],
      [{ lr: 1e-3, beta1: -0.1 }, 'adamw: beta1 must be in [0, 1), got -0.1'],
      [{ lr: 1e-3, beta2: 1.5 }, 'adamw: beta2 must be in [0, 1), got 1.5'],
      [{ lr: 1e-3, beta2: Number.NaN }, 'adamw: beta2 must be in [0, 1), got NaN'],
      [{ lr: 1e-3, eps: 0 }, 'adamw: eps must be a finite number > 0, got 0'],
      [{ lr: 1e-3, eps: -1e-8 }, 'adamw: eps must be a finite number > 0, got -1e-8'],
      [{ lr: 1e-3, weightDecay: -0.01 }, 'adamw: weightDecay must be a finite number ≥ 0, got -0.01'],
      [
        { lr: 1e-3, weight_decay: 0.1 } as AdamWOptions,
        'adamw: unknown option "weight_decay" (the options are lr, beta1, beta2, eps, weightDecay, decay, impl)',
      ],
      [{ lr: 1e-3, decay: true as unknown as () => boolean }, 'adamw: decay must be a function (path, tensor) => boolean, got true'],
      [{ lr: 1e-3, impl: 'gpu' as 'fused' }, "adamw: impl must be 'fused' or 'composed', got \"gpu\""],
    ];
    for (const [opts, msg] of bad) expect(throwsNaming(() => adamw(opts))).toBe(msg);
    // the edges that are allowed
    expect(() => adamw({ lr: 1e-3, beta1: 0, beta2: 0, weightDecay: 0 })).not.toThrow();
  });

  it('names a schedule that returns a bad value, and a bad step counter', () => {
    const opt = adamw<Net>({ lr: (t) => (t === 2 ? Number.NaN : 1e-3) });
    const params = makeNet(paramData, 'float32');
    const grads = makeNet(gradData(0), 'float32');
    const s0 = opt.init(params);
    const before = memoryStats().backends.cpu.tensors;
    const s1 = opt.update(params, grads, s0);
    expect(throwsNaming(() => opt.update(s1.params, grads, s1.state))).toBe(
      'adamw: lr(2) returned NaN; a schedule must return a finite number ≥ 0',
    );
    expect(throwsNaming(() => opt.update(params, grads, { ...s0, step: -1 }))).toBe('adamw: state.step must be an integer ≥ 0, got -1');
    expect(throwsNaming(() => opt.update(params, grads, { ...s0, step: 1.5 }))).toBe('adamw: state.step must be an integer ≥ 0, got 1.5');
    dispose(s1);
    expect(memoryStats().backends.cpu.tensors).toBe(before); // failed updates leave nothing behind
    dispose([params, grads, s0]);
  });

  it('names the path where grads or the state do not match params', () => {
    const p = {
      layers: [{ w: zeros([3, 2]) }, { w: zeros([4, 3]), b: zeros([3]) }],
      blocks: new Map([['a', zeros([2])]]),
    };
    type P = typeof p;
    const opt = adamw<P>({ lr: 1e-3 });
    const state = opt.init(p);
    const check = (g: unknown, msg: string) => expect(throwsNaming(() => opt.update(p, g as P, state))).toBe(msg);
    const g = (over: Record<string, unknown> = {}) => ({
      layers: [{ w: zeros([3, 2]) }, { w: zeros([4, 3]), b: zeros([3]) }],
      blocks: new Map([['a', zeros([2])]]),
      ...over,
    });

    tidy(() => {
      check(
        g({ layers: [{ w: zeros([3, 2]) }, { w: zeros([3, 4]), b: zeros([3]) }] }),
        'adamw: grads.layers[1].w has shape [3,4] but params.layers[1].w has [4,3]',
      );
      check(
        g({ layers: [{ w: zeros([3, 2]) }, { w: zeros([4, 3]) }] }),
        'adamw: grads.layers[1].b is missing but params.layers[1].b is a Tensor',
      );
      check(
        g({
          layers: [
            { w: zeros([3, 2]), c: zeros([1]) },
            { w: zeros([4, 3]), b: zeros([3]) },
          ],
        }),
        'adamw: grads.layers[0].c is a Tensor but params.layers[0].c is missing',
      );
      check(g({ layers: [{ w: zeros([3, 2]) }] }), 'adamw: grads.layers has 1 entries but params.layers has 2');
      check(
        g({ layers: [{ w: zeros([3, 2], { dtype: 'float64' }) }, { w: zeros([4, 3]), b: zeros([3]) }] }),
        'adamw: grads.layers[0].w has dtype float64 but params.layers[0].w has float32',
      );
      check(
        g({ layers: [{ w: 0 }, { w: zeros([4, 3]), b: zeros([3]) }] }),
        'adamw: grads.layers[0].w is a number but params.layers[0].w is a Tensor',
      );
      check(g({ blocks: new Map([['b', zeros([2])]]) }), 'adamw: grads.blocks.get("a") is missing but params.blocks.get("a") is a Tensor');
      check(g({ blocks: { a: zeros([2]) } }), 'adamw: grads.blocks is a record but params.blocks is a Map');
      check(undefined, 'adamw: grads is undefined but params is a record');
    });

    const m = opt.init(p).m;
    m.layers[0].w.dispose();
    expect(throwsNaming(() => opt.update(p, p, { ...state, m }))).toBe('adamw: state.m.layers[0].w has been disposed');
    const v = { ...state.v, layers: [state.v.layers[0]] } as unknown as P;
    expect(throwsNaming(() => opt.update(p, p, { ...state, v }))).toBe('adamw: state.v.layers has 1 entries but params.layers has 2');
    dispose([m, state, p]);
  });

  it.skipIf(!gpu)('names the path where grads live on another backend', () => {
    const opt = adamw<{ w: Tensor }>({ lr: 1e-3 });
    const p = { w: zeros([2]) };
    const g = { w: zeros([2], { backend: gpu as Backend }) };
    const state = opt.init(p);
    expect(throwsNaming(() => opt.update(p, g, state))).toBe('adamw: grads.w lives on webgpu but params.w on cpu');
    dispose([p, g, state]);
  });
});

describe('adamw: memory', () => {
  const snapshot = () => {
    const { tensors, bytesInUse, storages } = memoryStats().backends.cpu;
    return { tensors, bytesInUse, storages };
  };

  it('50 steps in tidy keep memoryStats() flat', () => {
    const opt = adamw<Net>({ lr: schedule });
    let params = makeNet(paramData, 'float32');
    let state = opt.init(params);
    const grads = makeNet(gradData(0), 'float32');
    const before = snapshot();
    for (let i = 0; i < 50; i++) {
      const next = tidy(() => opt.update(params, grads, state));
      dispose([params, state]);
      ({ params, state } = next);
      expect(snapshot()).toEqual(before);
    }
    dispose([params, state, grads]);
  });

  it('outside tidy, an update leaves only its results alive', () => {
    const opt = adamw<Net>({ lr: 1e-3 });
    const params = makeNet(paramData, 'float32');
    const grads = makeNet(gradData(0), 'float32');
    const state = opt.init(params);
    const before = snapshot();
    const out = opt.update(params, grads, state);
    const after = snapshot();
    expect(after.tensors - before.tensors).toBe(12); // 4 parameters + 4 + 4 moments
    expect(after.bytesInUse - before.bytesInUse).toBe(3 * 4 * (6 + 3 + 6 + 1));
    dispose(out);
    expect(snapshot()).toEqual(before);
    dispose([params, grads, state]);
  });
});
