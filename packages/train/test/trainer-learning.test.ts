import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { train } from '../src/index.js';
import { sharedData } from './data-shared.js';

/** Short CPU runs that must learn something: below the unigram entropy, above chance. */

const tmp = mkdtempSync(join(tmpdir(), 'foxgate-learning-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Entropy (nats) of the byte distribution of a file: the loss of the best context-free predictor. */
function byteEntropy(file: string): number {
  const bytes = readFileSync(file);
  const count = new Float64Array(256);
  for (const b of bytes) count[b]++;
  let h = 0;
  for (const c of count) if (c) h -= (c / bytes.length) * Math.log(c / bytes.length);
  return h;
}

describe('learning on the CPU', () => {
  it('a tiny FoX-Pro on Tiny Shakespeare gets clearly below the unigram entropy in 120 steps', async () => {
    const file = sharedData('tinyshakespeare', 'input.txt');
    const h = byteEntropy(file);
    expect(h).toBeGreaterThan(3.2); // ~3.31 nats (~4.78 bits) for its ~65 characters
    expect(h).toBeLessThan(3.4);
    const r = await train(
      {
        model: { model: 'foxPro', preset: 'tiny' },
        data: `text:${file}`,
        device: 'cpu',
        context: 32,
        batch: 8,
        steps: 120,
        lr: 1e-2,
        evalEvery: 0,
        evalRows: 32,
        checkpointEvery: 0,
        extrapolate: [],
      },
      { out: join(tmp, 'shakespeare') },
    );
    const val = r.eval?.loss as number;
    expect(r.eval?.targets).toBeGreaterThanOrEqual(32 * 31);
    // byte-level: validation loss in nats per byte, on held-out segments of the play
    expect(val).toBeLessThan(h - 0.4);
    expect(r.losses[0]).toBeGreaterThan(h); // it started above (uniform over 261 tokens ≈ 5.56)
  });

  it('MQAR (the default task): accuracy well above chance after 100 steps', async () => {
    const r = await train(
      { device: 'cpu', batch: 16, steps: 100, evalEvery: 0, checkpointEvery: 0, extrapolate: [] },
      { out: join(tmp, 'mqar') },
    );
    const acc = r.eval?.accuracy;
    expect(acc?.name).toBe('mqar');
    expect(acc?.chance).toBe(1 / 8);
    expect(acc?.total).toBeGreaterThanOrEqual(64 * 4); // 64 validation rows, 4 queries each
    expect(acc?.value).toBeGreaterThan(0.5); // 4× chance (this run: ~0.86; the 120-step default reaches 1)
  });
});
