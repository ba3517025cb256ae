import * as T from '@foxgate/tensor';
import { type Backend, memoryStats } from '@foxgate/tensor';
import { destroyTestWebGPU, testWebGPU } from '@foxgate/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { customOp, valueAndGrad } from '../src/index.js';
import { initMlp, type Mlp, mlpLoss, problem, sgd } from './mlp.js';

T.getBackend('cpu'); // registers the CPU backend (lazily created) so memoryStats lists it
const gpu = (await testWebGPU()) as Backend | null; // null (with a skip line) without an adapter
afterAll(destroyTestWebGPU);

/** 200 SGD steps; live tensors and bytes of `backend` must not change after the first step. */
async function trainFlat(backend: Backend | string, name: string, steps = 200): Promise<number[]> {
  const { x, y } = problem(backend);
  let p: Mlp = initMlp(backend);
  const vg = valueAndGrad((params: Mlp) => mlpLoss(params, x, y));
  const seen: { tensors: number; bytesInUse: number }[] = [];
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) {
    const { value, grads } = vg(p);
    p = sgd(p, grads, 0.1);
    if (i % 50 === 0 || i === steps - 1) losses.push(await value.item());
    value.dispose();
    const { tensors, bytesInUse } = memoryStats().backends[name];
    seen.push({ tensors, bytesInUse });
  }
  T.dispose([p, x, y]);
  for (const s of seen) expect(s).toEqual(seen[0]);
  return losses;
}

describe('memory stays flat over training steps', () => {
  it('CPU: 200 steps of an 8→16→4 tanh MLP with cross-entropy and SGD', async () => {
    const live = () => {
      const { peakBytes: _peak, ...m } = memoryStats().backends.cpu; // the peak only grows
      return m;
    };
    const before = live();
    const losses = await trainFlat('cpu', 'cpu');
    expect(losses[losses.length - 1]).toBeLessThan(losses[0]);
    expect(live()).toEqual(before);
  });

  it.skipIf(!gpu)('WebGPU: the same 200 steps', async () => {
    const b = gpu as Backend;
    const before = memoryStats().backends[b.name];
    const losses = await trainFlat(b, b.name);
    expect(losses[losses.length - 1]).toBeLessThan(losses[0]);
    await b.sync();
    const after = memoryStats().backends[b.name];
    expect(after.tensors).toBe(before.tensors);
    expect(after.bytesInUse).toBe(before.bytesInUse);
  });

  it('CPU: activations are freed during the backward pass, not only at the end', () => {
    const { x, y } = problem('cpu', 256, 8);
    const p = initMlp('cpu', [8, 256, 4]);
    let atEnd = 0;
    // an identity op on the first layer: its backward runs last, when little should remain
    const probe = customOp({
      name: 'probe',
      forward: ([t]) => ({ outputs: [T.mul(t, 1)] }),
      backward: ([g]) => {
        atEnd = memoryStats().backends.cpu.bytesInUse;
        return [g];
      },
      saveInputs: false,
      saveOutputs: false,
    });
    let afterForward = 0;
    const f = (params: Mlp) => {
      const h = T.tanh(T.add(probe([T.matmul(x, params.w1)])[0], params.b1));
      const l = T.crossEntropy(T.add(T.matmul(h, params.w2), params.b2), y);
      afterForward = memoryStats().backends.cpu.bytesInUse;
      return l;
    };
    const base = memoryStats().backends.cpu.bytesInUse;
    const out = valueAndGrad(f)(p);
    const hidden = 256 * 256 * 4; // one [256,256] float32 activation
    expect(afterForward - base).toBeGreaterThan(3 * hidden);
    // when the first layer's backward runs: the gradient flowing into it, plus at most one more
    expect(atEnd - base).toBeLessThan(2.5 * hidden);
    // after the call: only the value (4 bytes) and the gradients (= parameter bytes) remain
    const paramBytes = 4 * (8 * 256 + 256 + 256 * 4 + 4);
    expect(memoryStats().backends.cpu.bytesInUse - base).toBe(paramBytes + 4);
    T.dispose([out, p, x, y]);
  });
});
