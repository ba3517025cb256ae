import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { flattenTree } from '@foxgate/autograd';
import { loadCheckpoint } from '@foxgate/models';
import { dispose, loadSafetensors, saveSafetensors, tensor } from '@foxgate/tensor';
import { rejectsNaming } from '@foxgate/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { train } from '../src/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'foxgate-nan-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/**
 * lr 10 with weight decay 10 and no clipping: the decoupled decay multiplies every matrix by
 * 1 − lr·wd = −99 a step, so within a few steps activations overflow float32 and the gradients
 * (then the loss) turn NaN. Deterministic on the CPU.
 */
const DIVERGING = {
  model: { model: 'foxPro', preset: 'tiny' },
  device: 'cpu',
  batch: 2,
  context: 32,
  steps: 60,
  lr: 10,
  weightDecay: 10,
  clip: 0,
  warmup: 0,
  evalEvery: 0,
  checkpointEvery: 1,
};

const paramName = /(model\.[\w.]+|lm_head\.weight)/;

/** Loads the run's checkpoint: its step, and whether every parameter is finite. */
async function checkpointState(out: string) {
  const ck = await loadCheckpoint(join(out, 'checkpoint'));
  let finite = true;
  for (const [, t] of flattenTree(ck.params)) for (const v of t.dataSync()) if (!Number.isFinite(v)) finite = false;
  dispose(ck.params);
  return { step: (ck.extra?.train as { step?: number } | undefined)?.step, finite };
}

/** Rewrites one tensor of a safetensors file with a NaN at element 3. */
async function poison(file: string, name: string): Promise<void> {
  const ts = await loadSafetensors(file, { backend: 'cpu' });
  expect(ts[name], name).toBeDefined();
  const v = ts[name].dataSync(); // a copy
  v[3] = Number.NaN;
  ts[name].dispose();
  ts[name] = tensor(v, ts[name].shape, { backend: 'cpu' });
  await saveSafetensors(file, ts);
  dispose(Object.values(ts));
}

describe('a diverging run stops at the first non-finite step, naming it and a parameter; the last checkpoint stays good', () => {
  it('grad norm read every step (logEvery 1): stops before the NaN update', async () => {
    const out = join(tmp, 'every-step');
    const steps: number[] = [];
    const msg = await rejectsNaming(train({ ...DIVERGING, logEvery: 1 }, { out, hooks: { onStep: (m) => steps.push(m.step) } }));
    const last = steps[steps.length - 1];
    expect(last).toBeGreaterThan(1);
    expect(last).toBeLessThan(60);
    expect(msg).toMatch(new RegExp(`^train: step ${last + 1}: the (loss|gradient norm) is not finite`));
    expect(msg).toMatch(new RegExp(`non-finite gradient: ${paramName.source}`));
    expect(msg).toContain(`the last good checkpoint is ${join(out, 'checkpoint')}`);
    expect(await checkpointState(out)).toEqual({ step: last, finite: true });
  });

  it('grad norm not read back on most steps (logEvery 100): the run stops, the checkpoint before the failing step stays good', async () => {
    const out = join(tmp, 'rarely-logged');
    const msg = await rejectsNaming(train({ ...DIVERGING, logEvery: 100 }, { out }));
    // the loss check of the step or the parameter check before its checkpoint, whichever sees the overflow first
    expect(msg).toMatch(
      new RegExp(`^train: step \\d+: (the loss is not finite|parameter ${paramName.source} is not finite after the update)`),
    );
    const failed = Number(/step (\d+)/.exec(msg)?.[1]);
    const ck = await checkpointState(out);
    expect(ck.finite).toBe(true);
    expect(ck.step).toBe(failed - 1);
    expect(msg).toContain(`the last good checkpoint is ${join(out, 'checkpoint')}`);
    // the checkpoint loads and continues: deterministically into the same failure at the same step
    const again = await rejectsNaming(train({}, { out, resume: true, skipFinalEval: true }));
    expect(again).toBe(msg);
  });

  it('a finite loss and gradient but a NaN update (a poisoned AdamW moment, resumed, logEvery 100): the parameter is named and never replaces the checkpoint', async () => {
    const out = join(tmp, 'poisoned-moment');
    await train({ ...DIVERGING, lr: 1e-3, weightDecay: 0.1, steps: 2, logEvery: 100 }, { out, skipFinalEval: true });
    await poison(join(out, 'checkpoint', 'optimizer.safetensors'), 'v.model.layers.1.mlp.down_proj.weight');
    const msg = await rejectsNaming(train({ steps: 5 }, { out, resume: true, skipFinalEval: true }));
    expect(msg).toBe(
      `train: step 3: parameter model.layers.1.mlp.down_proj.weight is not finite after the update; the last good checkpoint is ${join(out, 'checkpoint')}`,
    );
    expect(await checkpointState(out)).toEqual({ step: 2, finite: true });
  });

  it('a NaN in a parameter (a poisoned checkpoint, resumed): the loss is not finite, the gradient named', async () => {
    const out = join(tmp, 'poisoned');
    await train({ ...DIVERGING, lr: 1e-3, weightDecay: 0.1, steps: 2, logEvery: 1 }, { out, skipFinalEval: true });
    await poison(join(out, 'checkpoint', 'model.safetensors'), 'model.layers.1.mlp.down_proj.weight');
    const msg = await rejectsNaming(train({ steps: 5 }, { out, resume: true }));
    expect(msg).toMatch(/^train: step 3: the loss is not finite \(loss NaN\); first non-finite gradient: /);
    expect(msg).toMatch(paramName);
  });
});
