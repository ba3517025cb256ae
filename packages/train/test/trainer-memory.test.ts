import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { memoryStats, probeWebGPU } from '@foxgate/tensor';
import { afterAll, describe, expect, it } from 'vitest';
import { train } from '../src/index.js';

/**
 * Nothing accumulates across training steps: live tensors, storages, bytes in use (and on
 * WebGPU the device's buffers) are the same at every step once the first steps have run,
 * through logging, evaluation and checkpoints.
 */

const tmp = mkdtempSync(join(tmpdir(), 'foxgate-trainer-memory-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

process.env.XDG_RUNTIME_DIR ??= tmpdir();
const probe = await probeWebGPU();
if (!probe.available) {
  if (process.env.FOXGATE_REQUIRE_WEBGPU === '1') throw new Error(`FOXGATE_REQUIRE_WEBGPU=1 but WebGPU is unavailable: ${probe.reason}`);
  console.log(`WebGPU tests skipped: ${probe.reason}`);
}

/** A very small FoX-Pro (hidden 16, one layer, one head) on short MQAR rows. */
const SMALL = {
  model: { model: 'foxPro', preset: 'tiny', hidden_size: 16, num_hidden_layers: 1, num_heads: 1 },
  data: 'synthetic:mqar',
  task: { pairs: 2 },
  context: 16,
  batch: 2,
  logEvery: 10,
  evalRows: 4,
  extrapolate: [],
};

type Snapshot = Record<string, number>;

async function watch(device: 'cpu' | 'webgpu', steps: number, from: number, fields: string[]) {
  const snaps: { step: number; s: Snapshot }[] = [];
  const r = await train(
    { ...SMALL, device, steps, evalEvery: Math.floor(steps / 4), checkpointEvery: Math.floor(steps / 5) },
    {
      out: join(tmp, device),
      skipFinalEval: true,
      hooks: {
        onStep: (m) => {
          if (m.step < from) return;
          const b = memoryStats().backends[device] as unknown as Snapshot;
          snaps.push({ step: m.step, s: Object.fromEntries(fields.map((f) => [f, b[f]])) });
        },
      },
    },
  );
  expect(r.step).toBe(steps);
  expect(snaps.length).toBe(steps - from + 1);
  return snaps;
}

const changes = (snaps: { step: number; s: Snapshot }[]) =>
  snaps.filter((x) => JSON.stringify(x.s) !== JSON.stringify(snaps[0].s)).map((x) => ({ step: x.step, ...x.s }));

describe('memory stays flat over training steps', () => {
  it('CPU: 1,000 steps, live tensors and storages unchanged from step 2 on', async () => {
    const snaps = await watch('cpu', 1000, 2, ['tensors', 'storages', 'bytesInUse']);
    // the parameters and the two AdamW moments of each: 19 leaves × 3
    expect(snaps[0].s.tensors).toBe(57);
    expect(snaps[0].s.storages).toBe(57);
    expect(changes(snaps)).toEqual([]);
  });

  it.skipIf(!probe.available)('WebGPU: 1,000 steps, live tensors, storages and device buffers unchanged after the first 20', async () => {
    const snaps = await watch('webgpu', 1000, 20, ['tensors', 'storages', 'bytesInUse', 'deviceBuffers', 'pooledBuffers']);
    expect(snaps[0].s.tensors).toBe(57);
    expect(changes(snaps)).toEqual([]);
  });
});
