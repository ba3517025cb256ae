import { flattenTree, valueAndGrad } from '@foxgate/autograd';
import {
  type Backend,
  crossEntropy,
  type DType,
  dispose,
  matmul,
  memoryStats,
  resetPeakMemory,
  rngKey,
  type Tensor,
  tensor,
  transpose,
} from '@foxgate/tensor';
import { destroyTestWebGPU, testWebGPU } from '@foxgate/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { type ConfigInput, createModel, type LossOptions, linearCrossEntropy, type ModelParams } from '../src/index.js';
import { lcg, relMaxError, throwsNaming, values } from './util.js';

const gpu = (await testWebGPU()) as unknown as Backend | null;
afterAll(destroyTestWebGPU);

const tiny = (model: string, tie: boolean, extra: ConfigInput = {}): ConfigInput => ({
  model,
  vocab_size: 53,
  hidden_size: 16,
  num_heads: 2,
  num_hidden_layers: 2,
  intermediate_size: 24,
  tie_word_embeddings: tie,
  ...extra,
});

/** Token ids in [0, V) and targets with every 5th entry (and one whole row tail) ignored. */
function batch(B: number, T: number, V: number, seed: number, backend: string | Backend) {
  const r = lcg(seed);
  const x = Int32Array.from({ length: B * T }, () => Math.floor(r() * V));
  const y = Int32Array.from({ length: B * T }, (_, i) => (i % 5 === 3 || i >= B * T - 4 ? -100 : Math.floor(r() * V)));
  const t = (d: Int32Array) => tensor(d, [B, T], { dtype: 'int32', backend });
  return { x: t(x), y: t(y) };
}

/** Loss and every gradient of `model.loss` with the given options. */
async function lossAndGrads(model: ReturnType<typeof createModel>, p: ModelParams, x: Tensor, y: Tensor, opts: LossOptions) {
  const r = valueAndGrad((q: ModelParams) => model.loss(q, x, y, opts))(p);
  const loss = (await r.value.data())[0];
  const grads = new Map<string, Float64Array>();
  for (const [k, g] of flattenTree(r.grads)) grads.set(k, Float64Array.from(await g.data()));
  dispose([r.value, r.grads]);
  return { loss, grads };
}

async function compare(name: string, tie: boolean, dtype: DType, backend: string | Backend, opts: LossOptions, tol: number) {
  const model = createModel(tiny(name, tie));
  const p = model.init(rngKey(4), { dtype, backend });
  const { x, y } = batch(2, 13, 53, 7, backend); // N = 26 rows
  const want = await lossAndGrads(model, p, x, y, { ...opts, fusedLoss: false });
  const got = await lossAndGrads(model, p, x, y, { ...opts, lossChunkRows: 4 }); // 4 does not divide 26
  expect(Math.abs(got.loss - want.loss) / Math.abs(want.loss)).toBeLessThan(tol);
  expect([...got.grads.keys()].sort()).toEqual([...want.grads.keys()].sort());
  if (tie) expect(got.grads.has('lm_head.weight')).toBe(false);
  else expect(got.grads.has('lm_head.weight')).toBe(true);
  for (const [k, w] of want.grads) {
    const g = got.grads.get(k) as Float64Array;
    expect(relMaxError(g, w), `grad ${k}`).toBeLessThan(tol);
  }
  dispose([p, x, y]);
}

const cases = (['transformer', 'foxPro'] as const).flatMap((name) =>
  [false, true].flatMap((tie) => (['mean', 'sum'] as const).map((reduction) => ({ name, tie, reduction }))),
);

describe('fused LM head + cross-entropy: the same loss and gradients as the full logits (CPU)', () => {
  for (const { name, tie, reduction } of cases) {
    it(`${name}, ${tie ? 'tied' : 'untied'} head, ${reduction}, float64`, async () => {
      await compare(name, tie, 'float64', 'cpu', { reduction }, 1e-10);
    });
    it(`${name}, ${tie ? 'tied' : 'untied'} head, ${reduction}, float32`, async () => {
      await compare(name, tie, 'float32', 'cpu', { reduction }, 1e-5);
    });
  }

  it('with shift and a loss mask, and the default chunk (one chunk)', async () => {
    const model = createModel(tiny('foxPro', false));
    const p = model.init(rngKey(5), { dtype: 'float64', backend: 'cpu' });
    const { x } = batch(2, 9, 53, 3, 'cpu');
    const mask = tensor(
      Float64Array.from({ length: 18 }, (_, i) => (i % 4 === 0 ? 0 : 1)),
      [2, 9],
      { dtype: 'float64', backend: 'cpu' },
    );
    for (const lossChunkRows of [undefined, 1, 7, 18, 100]) {
      const opts: LossOptions = { shift: true, lossMask: mask, lossChunkRows };
      const want = await lossAndGrads(model, p, x, x, { ...opts, fusedLoss: false });
      const got = await lossAndGrads(model, p, x, x, opts);
      expect(Math.abs(got.loss - want.loss) / want.loss).toBeLessThan(1e-10);
      for (const [k, w] of want.grads) expect(relMaxError(got.grads.get(k) as Float64Array, w), `grad ${k}`).toBeLessThan(1e-10);
    }
    dispose([p, x, mask]);
  });

  it('every target ignored: loss 0 and zero head gradients (mean), like crossEntropy', async () => {
    const model = createModel(tiny('transformer', false));
    const p = model.init(rngKey(6), { dtype: 'float64', backend: 'cpu' });
    const x = tensor(new Int32Array(6), [1, 6], { dtype: 'int32', backend: 'cpu' });
    const y = tensor(new Int32Array(6).fill(-100), [1, 6], { dtype: 'int32', backend: 'cpu' });
    const got = await lossAndGrads(model, p, x, y, { lossChunkRows: 4 });
    expect(got.loss).toBe(0);
    expect(Math.max(...(got.grads.get('lm_head.weight') as Float64Array).map(Math.abs))).toBe(0);
    dispose([p, x, y]);
  });

  it('loss without recording (eval) equals the unfused loss and leaves only the loss alive', () => {
    const model = createModel(tiny('foxPro', true));
    const p = model.init(rngKey(7), { dtype: 'float64', backend: 'cpu' });
    const { x, y } = batch(3, 5, 53, 11, 'cpu');
    const before = memoryStats().backends.cpu.tensors;
    const l = model.loss(p, x, y, { lossChunkRows: 2 });
    expect(memoryStats().backends.cpu.tensors).toBe(before + 1);
    const ref = model.loss(p, x, y, { fusedLoss: false });
    expect(Math.abs(l.dataSync()[0] - ref.dataSync()[0])).toBeLessThan(1e-12 * ref.dataSync()[0]);
    dispose([l, ref, p, x, y]);
  });

  it('a gradient step leaves only the loss and the gradients alive', () => {
    const model = createModel(tiny('transformer', true));
    const p = model.init(rngKey(8), { backend: 'cpu' });
    const { x, y } = batch(2, 6, 53, 13, 'cpu');
    const before = memoryStats().backends.cpu.tensors;
    const r = valueAndGrad((q: ModelParams) => model.loss(q, x, y, { lossChunkRows: 5 }))(p);
    expect(memoryStats().backends.cpu.tensors).toBe(before + 1 + flattenTree(r.grads).size);
    dispose([r.value, r.grads, p, x, y]);
  });

  it('refuses bad options with one line', () => {
    const model = createModel(tiny('transformer', false));
    const p = model.init(rngKey(0), { backend: 'cpu' });
    const { x, y } = batch(1, 4, 53, 1, 'cpu');
    throwsNaming(() => model.loss(p, x, y, { lossChunkRows: 0 }), 'lossAndLogits', 'opts.lossChunkRows must be a positive integer');
    throwsNaming(() => model.loss(p, x, y, { lossChunkRows: 2.5 }), 'lossAndLogits', 'opts.lossChunkRows', '2.5');
    throwsNaming(() => model.loss(p, x, y, { lossChunkRows: 2 ** 26 }), 'lossAndLogits', 'below 2^31 elements');
    throwsNaming(() => model.loss(p, x, y, { fusedLoss: 'yes' as never }), 'lossAndLogits', 'fusedLoss must be a boolean');
    dispose([p, x, y]);
  });
});

describe('linearCrossEntropy (the op on its own)', () => {
  const f64 = (shape: number[], seed: number) =>
    tensor(
      Float64Array.from(
        values(
          shape.reduce((a, b) => a * b, 1),
          seed,
          -1,
          1,
        ),
      ),
      shape,
      { dtype: 'float64', backend: 'cpu' },
    );

  it('value and gradients of h, weight and bias equal crossEntropy of the logits', async () => {
    const [N, D, V] = [11, 5, 9];
    const h = f64([N, D], 1);
    const w = f64([V, D], 2);
    const b = f64([V], 3);
    const t = tensor(
      Int32Array.from({ length: N }, (_, i) => (i % 4 === 1 ? -1 : (i * 7) % V)),
      [N],
      { dtype: 'int32', backend: 'cpu' },
    );
    for (const reduction of ['mean', 'sum'] as const) {
      const ref = valueAndGrad((q: { h: Tensor; w: Tensor; b: Tensor }) => {
        const logits = matmul(q.h, transpose(q.w));
        return crossEntropy(logits.add(q.b), t, { ignoreIndex: -1, reduction });
      })({ h, w, b });
      for (const chunkRows of [1, 3, 11, 20]) {
        const got = valueAndGrad((q: { h: Tensor; w: Tensor; b: Tensor }) =>
          linearCrossEntropy(q.h, q.w, q.b, t, { ignoreIndex: -1, reduction, chunkRows }),
        )({ h, w, b });
        expect(Math.abs(got.value.dataSync()[0] - ref.value.dataSync()[0])).toBeLessThan(1e-12);
        for (const k of ['h', 'w', 'b'] as const) {
          expect(relMaxError(got.grads[k].dataSync(), ref.grads[k].dataSync()), `${reduction} ${chunkRows} d${k}`).toBeLessThan(1e-12);
        }
        dispose([got.value, got.grads]);
      }
      dispose([ref.value, ref.grads]);
    }
    dispose([h, w, b, t]);
  });

  it('refuses mismatched arguments with one line', () => {
    const h = f64([4, 3], 1);
    const w = f64([6, 2], 2);
    const t = tensor(new Int32Array(4), [4], { dtype: 'int32', backend: 'cpu' });
    throwsNaming(() => linearCrossEntropy(h, w, null, t), 'linearCrossEntropy', 'weight must be [V,3]');
    const t2 = tensor(new Int32Array(3), [3], { dtype: 'int32', backend: 'cpu' });
    const w2 = f64([6, 3], 3);
    throwsNaming(() => linearCrossEntropy(h, w2, null, t2), 'linearCrossEntropy', 'targets must be int32[4]');
    throwsNaming(() => linearCrossEntropy(h, w2, null, t, { reduction: 'none' as never }), 'linearCrossEntropy', "'mean' or 'sum'");
    dispose([h, w, t, t2, w2]);
  });
});

describe('fused loss: peak memory (CPU)', () => {
  it('a loss+grad step peaks lower than the full logits by more than one [N,V] float32 tensor', () => {
    const V = 4096;
    const model = createModel({ ...tiny('transformer', false), vocab_size: V, hidden_size: 32 });
    const p = model.init(rngKey(9), { backend: 'cpu' });
    const { x, y } = batch(2, 64, V, 17, 'cpu'); // N = 128
    const NV = 128 * V * 4;
    const peakOf = (opts: LossOptions) => {
      resetPeakMemory();
      const base = memoryStats().backends.cpu.bytesInUse;
      const r = valueAndGrad((q: ModelParams) => model.loss(q, x, y, opts))(p);
      const peak = (memoryStats().backends.cpu.peakBytes ?? 0) - base;
      dispose([r.value, r.grads]);
      return peak;
    };
    const unfused = peakOf({ fusedLoss: false });
    const fused = peakOf({ lossChunkRows: 16 });
    console.log(`peak bytes over the live ones: unfused ${unfused}, fused ${fused}, one [N,V] f32 ${NV}`);
    expect(unfused - fused).toBeGreaterThanOrEqual(NV);
    dispose([p, x, y]);
  });
});

describe.skipIf(!gpu)('fused loss on WebGPU: the same loss and gradients as the full logits (float32)', () => {
  for (const { name, tie, reduction } of cases) {
    it(`${name}, ${tie ? 'tied' : 'untied'} head, ${reduction}`, async () => {
      await compare(name, tie, 'float32', gpu as Backend, { reduction }, 1e-5);
    });
  }
});
