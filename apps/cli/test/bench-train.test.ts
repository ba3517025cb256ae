// foxgate bench train / bench generate on tiny settings (CPU; WebGPU when there is an adapter).
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { memoryStats, probeWebGPU } from '@foxgate/tensor';
import { describe, expect, it } from 'vitest';
import { benchTrain, lossProblem } from '../src/bench/train.js';
import { runCli } from './util/cli-run.js';

const gpu = await probeWebGPU();
if (!gpu.available && process.env.FOXGATE_REQUIRE_WEBGPU === '1') throw new Error(`FOXGATE_REQUIRE_WEBGPU=1 but: ${gpu.reason}`);

const CURVE = /loss (\d+\.\d+) → (\d+\.\d+) over 2 steps/;

describe('bench train', () => {
  it('lossProblem: finite, and the last timed loss below the first', () => {
    expect(lossProblem([5.5, 5.1, 4.9])).toBeNull();
    expect(lossProblem([5.5, 5.6, 5.5])).toBe('the loss did not decrease');
    expect(lossProblem([5.5, 5.5])).toBe('the loss did not decrease');
    expect(lossProblem([5.5, Number.NaN, 4])).toBe('a loss is not finite');
    expect(lossProblem([5.5, Number.POSITIVE_INFINITY])).toBe('a loss is not finite');
    expect(lossProblem([5.5])).toBe('fewer than 2 timed steps');
  });
  it('one row per model and preset on the CPU: tokens/s of a full step, the loss falling over the timed steps', async () => {
    const rows = await benchTrain({ presets: ['tiny'], context: 16, batch: 2, steps: 2 });
    expect(rows.map((r) => `${r.bench} ${r.case} ${r.impl} ${r.unit}`)).toEqual([
      'train foxPro tiny B=2 T=16 foxgate cpu tok/s',
      'train transformer tiny B=2 T=16 foxgate cpu tok/s',
    ]);
    for (const r of rows) {
      expect(r.failed, r.note).toBeUndefined();
      expect(r.value).toBeGreaterThan(0);
      const m = CURVE.exec(r.note ?? '');
      expect(m, r.note).not.toBeNull();
      expect(Number(m?.[2])).toBeLessThan(Number(m?.[1]));
      // ms/step and tokens/s agree: 32 tokens a step
      const ms = Number(/^(\d+\.\d) ms\/step/.exec(r.note ?? '')?.[1]);
      expect(r.value).toBeCloseTo(32 / (ms / 1000), -1);
    }
  });
  it('leaves no live tensors behind (params, optimizer state, gradients of every step)', async () => {
    const live = () => memoryStats().backends.cpu?.tensors ?? 0;
    const before = live();
    await benchTrain({ presets: ['tiny'], models: ['foxPro'], context: 8, batch: 1, steps: 3 });
    expect(live()).toBe(before);
  });
  it('through the command: the table, exit 0; its flags refused on another suite', async () => {
    const r = await runCli(['bench', 'train', '--preset', 'tiny', '--context', '16', '--batch', '2', '--steps', '2']);
    expect(r.code, r.err.join('\n')).toBe(0);
    expect(r.out.join('\n')).toMatch(/^bench\s+case\s+impl\s+value\s+unit\s+note/);
    expect(r.out.join('\n')).toMatch(/train\s+foxPro tiny B=2 T=16\s+foxgate cpu/);
    const bad = await runCli(['bench', 'cpu', '--preset', 'tiny']);
    expect(bad.code).toBe(2);
    expect(bad.err).toEqual(["foxgate: bench: --preset applies to the train and generate suites only, not 'cpu'"]);
    const one = await runCli(['bench', 'train', '--steps', '1']);
    expect(one.code).toBe(2);
    expect(one.err).toEqual(["foxgate: bench: --steps must be an integer in [2, 1000000], got '1'"]);
  });
  it.skipIf(!gpu.available)('on WebGPU: the peak bytes in use besides tokens/s', async () => {
    const rows = await benchTrain({ device: 'webgpu', presets: ['tiny'], models: ['foxPro'], context: 16, batch: 2, steps: 2 });
    expect(rows).toHaveLength(1);
    expect(rows[0].failed, rows[0].note).toBeUndefined();
    expect(rows[0].impl).toBe('foxgate webgpu');
    expect(rows[0].note).toMatch(/peak \d+(\.\d+)? (KB|MB) in use/);
  });
});

describe('bench generate', () => {
  it('cached vs recomputed decode rows for both models; cache bytes with and without eviction for foxPro', async () => {
    const f = join(mkdtempSync(join(tmpdir(), 'fg-bench-gen-')), 'rows.json');
    const r = await runCli(['bench', 'generate', '--preset', 'tiny', '--context', '16', '--steps', '4', '--json', f]);
    expect(r.code, r.err.join('\n')).toBe(0);
    const rows = JSON.parse(readFileSync(f, 'utf8')).rows as { case: string; impl: string; value: number; unit: string; note: string }[];
    const speed = rows.filter((x) => x.unit === 'tok/s').map((x) => `${x.case} | ${x.impl}`);
    expect(speed).toEqual([
      'foxPro tiny prompt=16 decode | foxgate cpu kv-cache',
      'foxPro tiny prompt=16 decode | foxgate cpu recompute',
      'transformer tiny prompt=16 decode | foxgate cpu kv-cache',
      'transformer tiny prompt=16 decode | foxgate cpu recompute',
    ]);
    for (const x of rows.filter((y) => y.unit === 'tok/s')) expect(x.value).toBeGreaterThan(0);
    const size = rows.filter((x) => x.unit === 'MB');
    expect(size.map((x) => `${x.case} | ${x.impl}`)).toEqual(
      ['none', 'acp'].flatMap((e) => [1, 2, 3, 4].map((g) => `foxPro tiny prompt=16 cache after ${g} new | foxgate cpu evict ${e}`)),
    );
    for (const x of size) {
      const [, kept, full] = /kept (\d+) of (\d+) entries/.exec(x.note) ?? [];
      expect(Number(kept)).toBeLessThanOrEqual(Number(full));
      expect(x.value).toBeGreaterThan(0);
    }
    // without eviction every entry is kept: 2 layers × 2 heads × (16 + generated) positions
    expect(size[3].note).toContain(`kept ${2 * 2 * 20} of ${2 * 2 * 20} entries`);
  });
});
