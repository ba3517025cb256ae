import type { Backend } from '@foxgate/tensor';
import * as T from '@foxgate/tensor';
import { destroyTestWebGPU, testWebGPU } from '@foxgate/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { valueAndGrad } from '../src/index.js';
import { initMlp, type Mlp, mlpLoss, problem, sgd } from './mlp.js';

const gpu = (await testWebGPU()) as Backend | null; // null (with a skip line) without an adapter
afterAll(destroyTestWebGPU);

/** 50 SGD steps of a 2-layer silu MLP on the fixed problem; the loss before each step. */
async function trajectory(backend: Backend | string, steps = 50): Promise<number[]> {
  const { x, y } = problem(backend, 64);
  let p: Mlp = initMlp(backend, [8, 32, 4], 7);
  const vg = valueAndGrad((params: Mlp) => mlpLoss(params, x, y, T.silu));
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) {
    const { value, grads } = vg(p);
    p = sgd(p, grads, 0.3);
    losses.push(await value.item()); // the only readback of a step
    value.dispose();
  }
  T.dispose([p, x, y]);
  return losses;
}

let cpuLosses: number[] = [];

describe('end-to-end training of a 2-layer MLP with plain SGD', () => {
  it('CPU: the loss decreases', async () => {
    cpuLosses = await trajectory('cpu');
    expect(cpuLosses).toHaveLength(50);
    expect(cpuLosses.every(Number.isFinite)).toBe(true);
    expect(cpuLosses[49]).toBeLessThan(0.6 * cpuLosses[0]);
    // mostly monotone at this learning rate
    const ups = cpuLosses.slice(1).filter((l, i) => l > cpuLosses[i] + 1e-6).length;
    expect(ups).toBeLessThan(5);
  });

  it.skipIf(!gpu)('WebGPU: the same trajectory as the CPU within float32 tolerance', async () => {
    if (cpuLosses.length === 0) cpuLosses = await trajectory('cpu');
    const gpuLosses = await trajectory(gpu as Backend);
    expect(gpuLosses[49]).toBeLessThan(0.6 * gpuLosses[0]);
    gpuLosses.forEach((l, i) => {
      // float32 differences grow slowly with the steps (different summation orders)
      expect(Math.abs(l - cpuLosses[i])).toBeLessThan(1e-4 + 1e-4 * Math.abs(cpuLosses[i]) * (1 + i / 10));
    });
  });
});
