import { describe, expect, it } from 'vitest';
import { createTokenizer, type Dialog, dialogEvalBatches, dialogPerplexity, sampleMeanLosses, samplePerplexity } from '../src/index.js';

const tok = createTokenizer({ kind: 'byte' });

describe('dialog perplexity (the study’s definition)', () => {
  it('dialogPerplexity = exp(mean of per-sample mean losses), not the token-level PPL', () => {
    expect(dialogPerplexity([1, 2, 3])).toBeCloseTo(Math.exp(2), 12);
    expect(samplePerplexity(Math.log(7))).toBeCloseTo(7, 12);
    // one sample of 1 token with loss 1, one of 3 tokens with loss 3 each
    const perSample = [1, 3];
    expect(dialogPerplexity(perSample)).toBeCloseTo(Math.exp(2), 12);
    expect(dialogPerplexity(perSample)).not.toBeCloseTo(Math.exp((1 + 9) / 4), 3);
  });

  it('sampleMeanLosses averages each sample over its own response positions', () => {
    const dialogs: Dialog[] = [
      { id: 0, turns: ['hi', 'yo'] },
      { id: 1, turns: ['a', 'bcd', 'e'] },
    ];
    const [x] = [...dialogEvalBatches(dialogs, { tokenizer: tok, T: 12, B: 3, maxUtteranceTokens: 4 })];
    // response positions: sample 0 'yo'+EOS (3), sample 1 'bcd'+EOS (4), sample 2 'e'+EOS (2)
    const losses = new Float32Array(x.B * x.T).fill(100); // positions without loss must not count
    const seen = new Map<number, number>();
    for (let i = 0; i < losses.length; i++) {
      const id = x.sampleIds[i];
      if (id < 0) continue;
      const k = seen.get(id) ?? 0;
      seen.set(id, k + 1);
      losses[i] = id + k; // sample s: s, s+1, …
    }
    expect([...seen]).toEqual([
      [0, 3],
      [1, 4],
      [2, 2],
    ]);
    const m = sampleMeanLosses(losses, x);
    expect([...m]).toEqual([
      [0, (0 + 1 + 2) / 3],
      [1, (1 + 2 + 3 + 4) / 4],
      [2, (2 + 3) / 2],
    ]);
    expect(dialogPerplexity([...m.values()])).toBeCloseTo(Math.exp((1 + 2.5 + 2.5) / 3), 12);
  });

  it('errors', () => {
    expect(() => dialogPerplexity([])).toThrow('dialogPerplexity: perSampleMeanLoss is empty: no samples were evaluated');
    expect(() => dialogPerplexity([1, Number.NaN])).toThrow('dialogPerplexity: perSampleMeanLoss[1] is NaN');
    const [x] = [...dialogEvalBatches([{ id: 0, turns: ['a', 'b'] }], { tokenizer: tok, T: 8, B: 1, maxUtteranceTokens: 2 })];
    expect(() => sampleMeanLosses(new Float32Array(3), x)).toThrow(
      'sampleMeanLosses: losses has 3 values but the batch has B·T = 8 positions',
    );
    const { sampleIds: _, ...noIds } = x;
    expect(() => sampleMeanLosses(new Float32Array(8), noIds)).toThrow('sampleMeanLosses: batch has no sampleIds');
  });
});
