import { type Backend, dispose, rngKey, tensor } from '@foxgate/tensor';
import { destroyTestWebGPU, testWebGPU } from '@foxgate/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { argmaxOf, createModel, generate, sampleToken, sampleUniform, samplingDistribution } from '../src/index.js';
import { lcg } from './util.js';

const gpu = (await testWebGPU()) as unknown as Backend | null;
afterAll(destroyTestWebGPU);

const V = 30;
const make = (model = 'foxPro') => createModel({ model, hidden_size: 64, num_heads: 2, num_hidden_layers: 2, vocab_size: V });
const promptOf = (n: number, seed: number) => {
  const r = lcg(seed);
  return Array.from({ length: n }, () => Math.floor(r() * V));
};

describe('sampling distributions on hand-made logits', () => {
  it('greedy is the largest logit, the lowest id among ties', () => {
    expect(samplingDistribution([1, 3, 2, 3, 0], { temperature: 0 })).toEqual({ ids: [1], probs: Float64Array.of(1) });
    expect(argmaxOf([-1, -1])).toBe(0);
  });

  it('temperature divides the logits', () => {
    const { ids, probs } = samplingDistribution([0, Math.log(4)], { temperature: 2 }); // ∝ [1, 2]
    expect(ids).toEqual([0, 1]);
    expect(probs[0]).toBeCloseTo(1 / 3, 12);
    expect(probs[1]).toBeCloseTo(2 / 3, 12);
  });

  it('top-k keeps the k largest (ties by the lower id) and renormalises', () => {
    const { ids, probs } = samplingDistribution([1, 3, 2, 3, 0], { topK: 2 });
    expect(ids).toEqual([1, 3]);
    expect([...probs]).toEqual([0.5, 0.5]);
    const three = samplingDistribution([1, 3, 2, 3, 0], { topK: 3 });
    expect(three.ids).toEqual([1, 3, 2]);
    const e = Math.exp(-1);
    expect(three.probs[2]).toBeCloseTo(e / (2 + e), 12);
  });

  it('top-p keeps the smallest most likely set reaching p', () => {
    const logits = [0.15, 0.5, 0.05, 0.3].map(Math.log);
    const a = samplingDistribution(logits, { topP: 0.6 });
    expect(a.ids).toEqual([1, 3]); // 0.5 < 0.6 ≤ 0.5 + 0.3
    expect(a.probs[0]).toBeCloseTo(0.625, 12);
    expect(a.probs[1]).toBeCloseTo(0.375, 12);
    expect(samplingDistribution(logits, { topP: 0.4 }).ids).toEqual([1]);
    expect(samplingDistribution(logits, { topP: 0.9 }).ids).toEqual([1, 3, 0]);
    expect(samplingDistribution(logits, { topP: 1 }).ids).toEqual([1, 3, 0, 2]);
    // top-k first, then top-p over the renormalised rest: {0.5, 0.3} → {0.625, 0.375}
    expect(samplingDistribution(logits, { topK: 2, topP: 0.6 }).ids).toEqual([1]);
  });

  it('sampleToken inverts the CDF at u', () => {
    const logits = [0, Math.log(2)]; // [1/3, 2/3]
    expect(sampleToken(logits, {}, 0.33)).toBe(0);
    expect(sampleToken(logits, {}, 0.34)).toBe(1);
    expect(sampleToken(logits, { topK: 1 }, 0.01)).toBe(1);
  });

  it('the uniforms are counter-based: fixed per (seed, step, row), spread over [0, 1)', () => {
    expect(sampleUniform(7, 3, 1)).toBe(sampleUniform(7, 3, 1));
    expect(sampleUniform(7, 3, 1)).not.toBe(sampleUniform(7, 3, 2));
    expect(sampleUniform(7, 3, 1)).not.toBe(sampleUniform(8, 3, 1));
    const bins = new Array(10).fill(0);
    for (let i = 0; i < 10000; i++) {
      const u = sampleUniform(1, i, 0);
      expect(u >= 0 && u < 1).toBe(true);
      bins[Math.floor(u * 10)]++;
    }
    // χ² with 9 degrees of freedom: 27.9 is its 0.999 quantile
    const chi2 = bins.reduce((s, n) => s + (n - 1000) ** 2 / 1000, 0);
    expect(chi2).toBeLessThan(27.9);
  });
});

describe('generate', () => {
  it('greedy equals the argmax chain of full forwards', async () => {
    const m = make('fox');
    const p = m.init(rngKey(1), { backend: 'cpu' });
    const prompt = promptOf(9, 1);
    const { tokens } = await generate(m, p, [prompt], { maxNewTokens: 6, temperature: 0 });
    const seq = [...prompt];
    for (let i = 0; i < 6; i++) {
      const ids = tensor(Int32Array.from(seq), [1, seq.length], { dtype: 'int32', backend: 'cpu' });
      const l = m.forward(p, ids);
      seq.push(argmaxOf(l.dataSync().subarray((seq.length - 1) * V)));
      dispose([ids, l]);
    }
    expect(tokens).toEqual([seq.slice(9)]);
    dispose(p);
  });

  it('seeded sampling: the same seed gives the same tokens, another seed others; a prompt samples the same alone or in a batch', async () => {
    const m = make();
    const p = m.init(rngKey(2), { backend: 'cpu' });
    const prompts = [promptOf(7, 1), promptOf(3, 2)];
    const opts = { maxNewTokens: 12, temperature: 1.5, topK: 20, topP: 0.95 };
    const a = await generate(m, p, prompts, { ...opts, seed: 42 });
    const b = await generate(m, p, prompts, { ...opts, seed: 42 });
    const c = await generate(m, p, prompts, { ...opts, seed: 43 });
    expect(b.tokens).toEqual(a.tokens);
    expect(c.tokens).not.toEqual(a.tokens);
    const alone = await generate(m, p, [prompts[0]], { ...opts, seed: 42 });
    expect(alone.tokens[0]).toEqual(a.tokens[0]);
    expect(a.stats.tokensPerSecond).toBeGreaterThan(0);
    expect(a.stats.cache.full).toBe(2 * 2 * (7 + 11 + 3 + 11)); // layers · heads · cached positions
    dispose(p);
  });

  it('stop tokens end each sequence on its own (the stop token is its last token)', async () => {
    const m = make();
    const p = m.init(rngKey(3), { backend: 'cpu' });
    const prompts = [promptOf(5, 3), promptOf(8, 4)];
    const free = await generate(m, p, prompts, { maxNewTokens: 5, temperature: 0 });
    const stopAt = free.tokens[1][1];
    const idx0 = free.tokens[0].indexOf(stopAt);
    const r = await generate(m, p, prompts, { maxNewTokens: 5, temperature: 0, stop: [stopAt] });
    expect(r.tokens[1]).toEqual(free.tokens[1].slice(0, free.tokens[1].indexOf(stopAt) + 1));
    expect(r.tokens[0]).toEqual(idx0 >= 0 ? free.tokens[0].slice(0, idx0 + 1) : free.tokens[0]);
    dispose(p);
  });

  it('bad options are one line naming the option', async () => {
    const m = make();
    const p = m.init(rngKey(0), { backend: 'cpu' });
    const g = (o: object, prompts: unknown = [[1]]) => generate(m, p, prompts as number[][], { maxNewTokens: 2, ...o });
    await expect(g({ maxNewTokens: 0 })).rejects.toThrow(/^generate: opts.maxNewTokens must be a positive integer, got 0$/);
    await expect(g({ temperature: -1 })).rejects.toThrow(/^generate: opts.temperature must be a finite number ≥ 0/);
    await expect(g({ topK: 1.5 })).rejects.toThrow(/^generate: opts.topK must be a positive integer/);
    await expect(g({ topP: 0 })).rejects.toThrow(/^generate: opts.topP must be a number in \(0, 1\]/);
    await expect(g({ stop: [V] })).rejects.toThrow(/^generate: opts.stop holds 30, not a token id in \[0, 30\)/);
    await expect(g({ kvEvict: 'lru' })).rejects.toThrow(/^generate: opts.kvEvict must be 'none' or 'acp'/);
    await expect(g({ acpLogEps: 1 })).rejects.toThrow(/^generate: opts.acpLogEps must be a finite number ≤ 0/);
    await expect(g({ topk: 3 })).rejects.toThrow(/^generate: unknown option 'topk'/);
    await expect(g({}, [[1], [V]])).rejects.toThrow(/^generate: prompts\[1\]\[0\] = 30 is not a token id in \[0, 30\)/);
    await expect(g({}, [])).rejects.toThrow(/^generate: prompts must be a non-empty array/);
    dispose(p);
  });
});

describe.skipIf(!gpu)('generate on WebGPU', () => {
  it('the same seed samples the same tokens as on the CPU', async () => {
    const m = make();
    const pc = m.init(rngKey(4), { backend: 'cpu' });
    const pg = m.init(rngKey(4), { backend: gpu as Backend });
    const prompts = [promptOf(6, 5), promptOf(4, 6)];
    const opts = { maxNewTokens: 8, temperature: 1, seed: 9 };
    const a = await generate(m, pc, prompts, opts);
    const b = await generate(m, pg, prompts, opts);
    expect(b.tokens).toEqual(a.tokens);
    const e = await generate(m, pg, prompts, { ...opts, kvEvict: 'acp' });
    expect(e.tokens).toEqual(a.tokens);
    dispose([pc, pg]);
  }, 120_000);
});
