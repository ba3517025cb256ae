// `foxgate train --device webgpu` for a few steps (lavapipe in CI), then eval and generate there.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { probeWebGPU } from '@foxgate/tensor';
import { describe, expect, it } from 'vitest';
import { jsonOf, runCli } from './util/cli-run.js';

process.env.XDG_RUNTIME_DIR ??= tmpdir();
const gpu = await probeWebGPU();
if (!gpu.available) {
  if (process.env.FOXGATE_REQUIRE_WEBGPU === '1') throw new Error(`FOXGATE_REQUIRE_WEBGPU=1 but: ${gpu.reason}`);
  console.log(`WebGPU tests skipped: ${gpu.reason}`);
}

describe.skipIf(!gpu.available)('foxgate train --device webgpu', () => {
  it('trains 3 steps on WebGPU; eval there gives the run’s loss; generate runs there', async () => {
    const root = mkdtempSync(join(tmpdir(), 'fg-e2e-gpu-'));
    const out = join(root, 'run');
    const config = join(root, 'small.json');
    writeFileSync(config, JSON.stringify({ evalRows: 8, extrapolate: [], batch: 4 }));
    const r = await runCli([
      'train',
      '--config',
      config,
      '--steps',
      '3',
      '--eval-every',
      '0',
      '--device',
      'webgpu',
      '--out',
      out,
      '--json',
    ]);
    expect(r.code, r.err.join('\n')).toBe(0);
    const j = jsonOf(r);
    expect(j.step).toBe(3);
    expect(j.device).toMatch(/^webgpu \(/);
    expect(Number.isFinite(j.loss)).toBe(true);
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).device).toMatch(/^webgpu/);

    const e = jsonOf(await runCli(['eval', '--checkpoint', out, '--device', 'webgpu', '--json']));
    expect(e.device).toMatch(/^webgpu/);
    expect(e.loss).toBeCloseTo(j.eval.loss, 5);
    expect(e.accuracy.total).toBe(j.eval.accuracy.total);

    const g = jsonOf(
      await runCli(['generate', '--checkpoint', out, '--prompt', '<bos> k1 v0 k1', '--max-new', '3', '--device', 'webgpu', '--json']),
    );
    expect(g.tokens).toHaveLength(3);
    const cpu = jsonOf(
      await runCli(['generate', '--checkpoint', out, '--prompt', '<bos> k1 v0 k1', '--max-new', '3', '--device', 'cpu', '--json']),
    );
    expect(g.tokens).toEqual(cpu.tokens); // greedy: the same tokens on both backends (trained-from-scratch logits are not near-ties)
  });
});
