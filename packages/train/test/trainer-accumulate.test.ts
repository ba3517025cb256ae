import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { train } from '../src/index.js';

const run = (o: Record<string, unknown>) =>
  train(
    { model: { model: 'foxPro', preset: 'tiny' }, device: 'cpu', steps: 3, evalEvery: 0, checkpointEvery: 0, logEvery: 1, ...o },
    { out: join(mkdtempSync(join(tmpdir(), 'fg-acc-')), 'run'), skipFinalEval: true },
  );

describe('gradient accumulation', () => {
  for (const clip of [0, 1]) {
    it(`2 micro-batches of 8 rows equal one batch of 16 (MQAR rows are made in order; clip ${clip})`, async () => {
      const whole = await run({ batch: 16, accumulate: 1, clip });
      const halves = await run({ batch: 8, accumulate: 2, clip });
      expect(halves.tokens).toBe(whole.tokens);
      for (let i = 0; i < 3; i++) expect(Math.abs(halves.losses[i] - whole.losses[i])).toBeLessThan(1e-5);
    });
  }
});
