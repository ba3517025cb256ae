import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type DialogStudyOptions, runDialogStudy, type StudyResults } from '../src/index.js';
import { sharedData } from './data-shared.js';

const base = (): DialogStudyOptions => ({
  data: sharedData('dailydialog'),
  models: ['transformer'],
  trainContexts: [0, 1],
  testContexts: [0, 1],
  modelFields: { hidden_size: 32 },
  steps: 4,
  batch: 4,
  context: 64,
  maxDialogs: 16,
  maxTestDialogs: 4,
  evalBatch: 8,
  checkpointEvery: 2,
  device: 'cpu',
});

describe('runDialogStudy: resumable', () => {
  it('a study stopped inside its second cell continues there, never retrains the first, and ends as an uninterrupted one', async () => {
    const root = mkdtempSync(join(tmpdir(), 'fg-study-'));
    const whole = await runDialogStudy({ ...base(), out: join(root, 'whole') });
    expect(whole.stopped).toBe(false);
    expect(whole.trained).toEqual(['transformer-n0', 'transformer-n1']);

    const out = join(root, 'stopped');
    let cell = '';
    let steps = 0;
    const first = await runDialogStudy(
      { ...base(), out },
      {
        onCellStart: (c) => {
          cell = `${c.model}-n${c.trainContext}`;
        },
        onStep: () => {
          if (cell === 'transformer-n1') steps++;
        },
        shouldStop: () => steps >= 2,
      },
    );
    expect(first.stopped).toBe(true);
    expect(first.results).toBeNull();
    const done = join(out, 'cells', 'transformer-n0');
    expect(existsSync(join(done, 'test-eval.json'))).toBe(true);
    expect(existsSync(join(out, 'cells', 'transformer-n1', 'eval.json'))).toBe(false);
    expect(existsSync(join(out, 'cells', 'transformer-n1', 'checkpoint', 'config.json'))).toBe(true);
    expect(existsSync(join(out, 'results.json'))).toBe(false);
    const mtime = statSync(join(done, 'checkpoint', 'model.safetensors')).mtimeMs;
    const evalMtime = statSync(join(done, 'test-eval.json')).mtimeMs;

    const log: string[] = [];
    const second = await runDialogStudy({ ...base(), out }, { onLog: (s) => log.push(s) });
    expect(second.stopped).toBe(false);
    expect(second.skipped).toEqual(['transformer-n0']);
    expect(second.trained).toEqual(['transformer-n1']);
    expect(log).toContain(`cell 1/2 transformer-n0: finished earlier, not retrained (${join(done, 'test-eval.json')})`);
    expect(log).toContain('cell transformer-n1: resuming at step 2');
    expect(statSync(join(done, 'checkpoint', 'model.safetensors')).mtimeMs).toBe(mtime);
    expect(statSync(join(done, 'test-eval.json')).mtimeMs).toBe(evalMtime);

    // bit-identical on the CPU: the resumed study's numbers are the uninterrupted study's
    const a = JSON.parse(readFileSync(join(root, 'whole', 'results.json'), 'utf8')) as StudyResults;
    const b = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as StudyResults;
    expect(b.analysis.grid).toEqual(a.analysis.grid);
    expect(b.analysis.oracle).toEqual(a.analysis.oracle);
    expect(b.cells.map((c) => c.finalTrainLoss)).toEqual(a.cells.map((c) => c.finalTrainLoss));
    expect(a.data).toEqual({ trainDialogs: 16, trainSamples: expect.any(Number), testDialogs: 4, testSamples: expect.any(Number) });
    expect(a.analysis.grid).toHaveLength(4);
    expect(a.tokensPerCell).toBe(4 * 4 * 64);

    // a third run only reads; a new test N evaluates the finished cells without retraining them
    const third = await runDialogStudy({ ...base(), testContexts: [0, 1, 'all'], out });
    expect(third.skipped).toEqual([]);
    expect(third.trained).toEqual([]);
    expect(third.evaluated).toEqual(['transformer-n0', 'transformer-n1']);
    expect(statSync(join(done, 'checkpoint', 'model.safetensors')).mtimeMs).toBe(mtime);
    expect(third.results?.analysis.grid).toHaveLength(6);
  });
  it('refuses to continue a study with other training settings, in one line', async () => {
    const out = mkdtempSync(join(tmpdir(), 'fg-study-'));
    await runDialogStudy({ ...base(), trainContexts: [0], testContexts: [0], steps: 1, out });
    await expect(runDialogStudy({ ...base(), trainContexts: [0], testContexts: [0], steps: 2, out })).rejects.toThrow(
      /^dialogStudy: .* holds a study with steps = 1, not 2; use another out folder or the same settings$/,
    );
  });
});
