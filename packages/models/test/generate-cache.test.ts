import { type Backend, dispose, memoryStats, rngKey, tensor } from '@foxgate/tensor';
import { destroyTestWebGPU, testWebGPU } from '@foxgate/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { argmaxOf, createDecoder, generate, MODEL_NAMES, type Model, type ModelParams, transformer } from '../src/index.js';
import { createModel } from '../src/model.js';
import { lcg, relMaxError } from './util.js';

const gpu = (await testWebGPU()) as unknown as Backend | null;
afterAll(destroyTestWebGPU);

const V = 50;
const promptOf = (n: number, seed: number) => {
  const r = lcg(seed);
  return Array.from({ length: n }, () => Math.floor(r() * V));
};

/** The full forward's logits at the last position of `seq` (no cache). */
async function fullLast(model: Model, params: ModelParams, seq: number[], backend: string | Backend): Promise<Float32Array> {
  const ids = tensor(Int32Array.from(seq), [1, seq.length], { dtype: 'int32', backend });
  const logits = model.forward(params, ids);
  const all = (await logits.data()) as Float32Array;
  dispose([ids, logits]);
  return all.slice((seq.length - 1) * V);
}

/**
 * Prefills `prompts`, then decodes `steps` greedy tokens; at the steps in `check` every
 * sequence's cached logits are compared with the full forward over its prompt + tokens so far.
 */
async function cachedMatchesFull(
  model: Model,
  params: ModelParams,
  prompts: number[][],
  steps: number,
  check: (s: number) => boolean,
  backend: string | Backend,
) {
  const dec = await createDecoder(model, params);
  const seqs = prompts.map((p) => [...p]);
  let worst = 0;
  try {
    let logits = await dec.prefill(prompts);
    for (let s = 0; s <= steps; s++) {
      if (check(s)) {
        for (let b = 0; b < prompts.length; b++) {
          const row = logits.subarray(b * V, (b + 1) * V);
          worst = Math.max(worst, relMaxError(row, await fullLast(model, params, seqs[b], backend)));
        }
      }
      if (s === steps) break;
      const next = seqs.map((_, b) => argmaxOf(logits.subarray(b * V, (b + 1) * V)));
      for (let b = 0; b < next.length; b++) seqs[b].push(next[b]);
      logits = await dec.step(next);
    }
  } finally {
    dec.dispose();
  }
  return worst;
}

/** The models with the KV cache of these tests ('sparsek' has its bounded cache: test/generate-sparsek.test.ts). */
const CACHED = MODEL_NAMES.filter((n) => n !== 'sparsek');

describe('cached decoding equals the full forward at every step (CPU)', () => {
  for (const name of CACHED) {
    it(`${name}: one prompt of odd length, decoding past a cache growth`, async () => {
      const m = createModel({ model: name, preset: 'tiny', vocab_size: V });
      const p = m.init(rngKey(1), { backend: 'cpu' });
      // prompt 37: the first buffers hold 128 positions, so step 91 grows them
      const worst = await cachedMatchesFull(m, p, [promptOf(37, 3)], 100, (s) => s < 6 || s % 23 === 0 || s >= 90, 'cpu');
      expect(worst).toBeLessThan(1e-4);
      dispose(p);
    });

    it(`${name}: a batch of ragged prompts (left padding, masked)`, async () => {
      const m = createModel({ model: name, preset: 'tiny', vocab_size: V });
      const p = m.init(rngKey(2), { backend: 'cpu' });
      const prompts = [promptOf(11, 4), promptOf(1, 5), promptOf(6, 6)];
      const worst = await cachedMatchesFull(m, p, prompts, 7, () => true, 'cpu');
      expect(worst).toBeLessThan(1e-4);
      dispose(p);
    });
  }
});

describe.skipIf(!gpu)('cached decoding equals the full forward on WebGPU', () => {
  for (const name of CACHED) {
    it(`${name}: ragged batch`, async () => {
      const m = createModel({ model: name, preset: 'tiny', vocab_size: V });
      const p = m.init(rngKey(2), { backend: gpu as Backend });
      const prompts = [promptOf(9, 4), promptOf(3, 5)];
      const worst = await cachedMatchesFull(m, p, prompts, 4, () => true, gpu as Backend);
      expect(worst).toBeLessThan(1e-4);
      dispose(p);
    }, 120_000);
  }
});

describe('memory', () => {
  it('live tensors stay flat over repeated generate calls', async () => {
    const m = transformer('tiny', { vocab_size: V, use_k_shift: true });
    const p = m.init(rngKey(3), { backend: 'cpu' });
    const live = () => memoryStats().backends.cpu?.tensors ?? 0;
    await generate(m, p, [promptOf(5, 1), promptOf(3, 2)], { maxNewTokens: 3, temperature: 0 });
    const before = live();
    for (let i = 0; i < 3; i++) {
      await generate(m, p, [promptOf(5, 1), promptOf(3, 2)], { maxNewTokens: 70, temperature: 0.8, seed: i });
      expect(live()).toBe(before);
    }
    dispose(p);
  });
});
