import { valueAndGrad } from '@foxgate/autograd';
import { type Backend, dispose, isTensor, rngKey, type Tensor, tensor } from '@foxgate/tensor';
import { destroyTestWebGPU, testWebGPU } from '@foxgate/testing';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type EmbeddingParams,
  embedding,
  headRmsNorm,
  initEmbedding,
  initLinear,
  initRMSNorm,
  initShiftLinear,
  initSwiGLU,
  linear,
  rmsNormLayer,
  rope,
  type ShiftLinearParams,
  shiftLinear,
  swiglu,
} from '../src/index.js';
import { maxDiff, throwsNaming, values, wsum } from './util.js';

const gpu = (await testWebGPU()) as unknown as Backend | null;
afterAll(destroyTestWebGPU);

/** The same float32 input on a backend. */
const input = (shape: number[], backend: string | Backend, seed = 77, lo = -2, hi = 2) =>
  tensor(
    Float32Array.from(
      values(
        shape.reduce((a, b) => a * b, 1),
        seed,
        lo,
        hi,
      ),
    ),
    shape,
    { dtype: 'float32', backend },
  );

const ids = (data: number[], shape: number[], backend: string | Backend) =>
  tensor(Int32Array.from(data), shape, { dtype: 'int32', backend });

describe.skipIf(!gpu)('the same forward on WebGPU and on the CPU (float32)', () => {
  /** Builds the same tensors on both backends; compares the last one and frees them all. */
  const run = async (f: (backend: string | Backend) => Tensor[]) => {
    const [c, g] = [f('cpu'), f(gpu as Backend)];
    const [yc, yg] = [c[c.length - 1], g[g.length - 1]];
    expect(yg.backend.name).toBe('webgpu');
    expect(yg.shape).toEqual(yc.shape);
    const d = maxDiff(await yg.data(), await yc.data());
    dispose([c, g]);
    return d;
  };

  it('init: the same key gives bit-identical weights on both backends', async () => {
    const wc = initLinear(rngKey(8), 32, 16, { backend: 'cpu' }).weight;
    const wg = initLinear(rngKey(8), 32, 16, { backend: gpu as Backend }).weight;
    expect([...(await wg.data())]).toEqual([...(await wc.data())]);
    const ec = initEmbedding(rngKey(9), 50, 8, { backend: 'cpu' }).weight;
    const eg = initEmbedding(rngKey(9), 50, 8, { backend: gpu as Backend }).weight;
    expect([...(await eg.data())]).toEqual([...(await ec.data())]);
    dispose([wc, wg, ec, eg]);
  });

  it('linear with bias', async () => {
    const d = await run((backend) => {
      const p = initLinear(rngKey(1), 32, 48, { bias: true, std: 0.2, backend });
      const x = input([2, 5, 32], backend);
      return [p.weight, p.bias as Tensor, x, linear(p, x)];
    });
    expect(d).toBeLessThan(1e-5);
  });

  it('swiglu', async () => {
    const d = await run((backend) => {
      const p = initSwiGLU(rngKey(2), 32, 64, { std: 0.2, backend });
      const x = input([2, 5, 32], backend);
      return [p.gate_proj.weight, p.down_proj.weight, x, swiglu(p, x)];
    });
    expect(d).toBeLessThan(1e-5);
  });

  it('rmsNormLayer', async () => {
    const d = await run((backend) => {
      const p = initRMSNorm(32, { backend });
      const x = input([2, 5, 32], backend);
      return [p.weight, x, rmsNormLayer(p, x)];
    });
    expect(d).toBeLessThan(1e-5);
  });

  it('headRmsNorm with a per-head [H·D] and a shared [D] weight', async () => {
    for (const n of [4 * 16, 16]) {
      const d = await run((backend) => {
        const w = input([n], backend, 5, 0.5, 1.5);
        const x = input([2, 5, 4, 16], backend);
        return [w, x, headRmsNorm({ weight: w }, x, 1e-6)];
      });
      expect(d).toBeLessThan(1e-5);
    }
  });

  it('embedding with repeated ids', async () => {
    const d = await run((backend) => {
      const p = initEmbedding(rngKey(3), 40, 24, { std: 1, backend });
      const t = ids([0, 39, 7, 7, 12, 0, 39, 3], [2, 4], backend);
      return [p.weight, t, embedding(p, t)];
    });
    expect(d).toBe(0); // a gather moves bits
  });

  it('rope with the default base, another base and an offset', async () => {
    for (const opts of [{}, { base: 10000 }, { base: 10000, offset: 37 }]) {
      const d = await run((backend) => {
        const x = input([2, 6, 3, 16], backend);
        return [x, rope(x, opts)];
      });
      expect(d).toBeLessThan(1e-5);
    }
  });

  it('shiftLinear with and without prev and reset (out and raw)', async () => {
    for (const withOpts of [false, true]) {
      for (const which of [0, 1]) {
        const d = await run((backend) => {
          const p = initShiftLinear(rngKey(4), 32, 4, { std: 0.2, backend });
          const x = input([2, 5, 32], backend);
          const prev = input([2, 32], backend, 6);
          const reset = tensor(Float32Array.from([0, 0, 1, 0, 0, 0, 1, 0, 0, 1]), [2, 5], { backend });
          const r = shiftLinear(p, x, 4, withOpts ? { prev, reset } : {});
          const [keep, last] = which === 0 ? [r.raw, r.out] : [r.out, r.raw];
          return [p.linear.weight, p.shift_proj.weight, x, prev, reset, keep, last];
        });
        expect(d).toBeLessThan(1e-5);
      }
    }
  });
});

describe.skipIf(!gpu)('the same gradients on WebGPU and on the CPU (float32)', () => {
  /** valueAndGrad on both backends; returns the max difference over every gradient leaf. */
  const grads = async <P extends object>(init: (backend: string | Backend) => P, loss: (p: P, backend: string | Backend) => Tensor) => {
    const out: Float32Array[][] = [];
    for (const backend of ['cpu', gpu as Backend]) {
      const p = init(backend);
      const { value, grads } = valueAndGrad((q: P) => loss(q, backend))(p);
      const leaves: Tensor[] = [];
      const walk = (t: unknown) => {
        if (isTensor(t)) leaves.push(t);
        else if (t && typeof t === 'object') for (const v of Object.values(t)) walk(v);
      };
      walk(grads);
      out.push(await Promise.all(leaves.map(async (t) => Float32Array.from(await t.data()))));
      dispose([p as unknown as Tensor[], value, grads as unknown as Tensor[]]);
    }
    expect(out[0].length).toBeGreaterThan(0);
    expect(out[1].length).toBe(out[0].length);
    return Math.max(...out[0].map((c, i) => maxDiff(out[1][i], c)));
  };

  it('embedding: the scatter-add of repeated ids', async () => {
    const d = await grads(
      (backend) => initEmbedding(rngKey(5), 30, 8, { backend }),
      (p: EmbeddingParams, backend) => {
        const t = ids([3, 3, 3, 29, 0, 3, 29, 1, 1, 3], [2, 5], backend);
        const y = wsum(embedding(p, t));
        t.dispose();
        return y;
      },
    );
    expect(d).toBeLessThan(1e-6);
  });

  it('shiftLinear with prev and reset', async () => {
    const d = await grads(
      (backend) => initShiftLinear(rngKey(6), 16, 2, { std: 0.3, backend }),
      (p: ShiftLinearParams, backend) => {
        const x = input([2, 4, 16], backend);
        const prev = input([2, 16], backend, 7);
        const reset = tensor(Float32Array.from([0, 1, 0, 0, 0, 0, 0, 1]), [2, 4], { backend });
        const y = wsum(shiftLinear(p, x, 2, { prev, reset }).out);
        dispose([x, prev, reset]);
        return y;
      },
    );
    expect(d).toBeLessThan(1e-5);
  });
});

describe.skipIf(!gpu)('mixed backends are refused with a message naming both', () => {
  it('embedding ids and shiftLinear prev on the CPU with weights on WebGPU', () => {
    const e = initEmbedding(rngKey(1), 10, 4, { backend: gpu as Backend });
    const t = ids([1, 2], [2], 'cpu');
    expect(throwsNaming(() => embedding(e, t))).toBe('embedding: ids live on cpu but p.weight on webgpu');
    const p = initShiftLinear(rngKey(2), 8, 2, { backend: gpu as Backend });
    const x = input([1, 3, 8], gpu as Backend);
    const prev = input([1, 8], 'cpu');
    expect(throwsNaming(() => shiftLinear(p, x, 2, { prev }))).toBe('shiftLinear: prev lives on cpu but x on webgpu');
    dispose([e, t, p, x, prev]);
  });
});
