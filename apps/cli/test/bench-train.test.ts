// foxgate bench train / bench generate on tiny settings (CPU; WebGPU when there is an adapter).
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCheckpoint } from '@foxgate/models';
import { memoryStats, probeWebGPU, tensor } from '@foxgate/tensor';
import { describe, expect, it } from 'vitest';
import { benchTrain, lossProblem, randomIds } from '../src/bench/train.js';
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
      'train foxPro tiny B=2 T=16 foxgate cpu ACP off tok/s',
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
      // (the note rounds ms to 0.1: tokens/s lies within what that rounding allows)
      expect(r.value).toBeGreaterThanOrEqual(32 / ((ms + 0.05) / 1000) - 1e-9);
      expect(r.value).toBeLessThanOrEqual(32 / ((ms - 0.05) / 1000) + 1e-9);
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
    expect(r.out.join('\n')).toMatch(/train\s+foxPro tiny B=2 T=16\s+foxgate cpu ACP off/);
    const bad = await runCli(['bench', 'cpu', '--preset', 'tiny']);
    expect(bad.code).toBe(2);
    expect(bad.err).toEqual(["foxgate: bench: --preset applies to the train and generate suites only, not 'cpu'"]);
    const only = await runCli([
      'bench',
      'train',
      '--model',
      'transformer',
      '--preset',
      'tiny',
      '--context',
      '8',
      '--batch',
      '1',
      '--steps',
      '2',
    ]);
    expect(only.code, only.err.join('\n')).toBe(0);
    expect(only.out.join('\n').match(/^train\s/gm)).toHaveLength(1);
    const acp = await runCli(['bench', 'cpu', '--acp', 'on']);
    expect(acp.err).toEqual(["foxgate: bench: --acp applies to the train suite only, not 'cpu'"]);
    const cap = await runCli(['bench', 'train', '--memory-cap', '4']);
    expect(cap.err).toEqual(['foxgate: bench: --memory-cap applies with --max-batch only']);
    const both = await runCli(['bench', 'train', '--max-batch', '--batch', '4']);
    expect(both.err).toEqual(['foxgate: bench: give --batch N or --max-batch, not both']);
    const prec = await runCli(['bench', 'train', '--precision', 'low']);
    expect(prec.err).toEqual(["foxgate: bench: --precision items must be among highest, high, got 'low'"]);
    const one = await runCli(['bench', 'train', '--steps', '1']);
    expect(one.code).toBe(2);
    expect(one.err).toEqual(["foxgate: bench: --steps must be an integer in [2, 1000000], got '1'"]);
  });
  it('ACP on and off for the FoX model, once for the softmax model; machine-readable data per row', async () => {
    const rows = await benchTrain({ presets: ['tiny'], context: 16, batch: 2, steps: 2, acp: [false, true] });
    expect(rows.map((r) => r.impl)).toEqual(['foxgate cpu ACP off', 'foxgate cpu ACP on', 'foxgate cpu']);
    for (const r of rows) {
      expect(r.failed, r.note).toBeUndefined();
      const d = r.data as Record<string, number>;
      expect(d.B * d.T).toBe(32);
      expect(r.value).toBeCloseTo((1000 * 32) / d.msPerStep, 6);
      // the peak of the timed steps is at least what stays live between them (params + AdamW moments)
      expect(d.peakBytes).toBeGreaterThanOrEqual(d.heldBytes);
      expect(d.heldBytes).toBeGreaterThanOrEqual(3 * 4 * d.params);
    }
  });
  it('maxBatch doubles B while a step fits: a memory cap stops it, and the note says why', async () => {
    const rows = await benchTrain({ presets: ['tiny'], models: ['transformer'], context: 8, steps: 2, maxBatch: true, memoryCap: 1 });
    expect(rows[0].case).toBe('transformer tiny B=1 T=8');
    expect(rows[0].note).toMatch(/largest B: B=2 would pass the memory cap/);
    const free = await benchTrain({ presets: ['tiny'], models: ['transformer'], context: 8, steps: 2, maxBatch: true, memoryCap: 40e6 });
    const B = (free[0].data as { B: number }).B;
    expect(B).toBeGreaterThan(1);
    expect(free[0].note).toContain(`B=${2 * B} would pass the memory cap`);
  });
  it('saveStep0: the initial weights, the token batch and the step-0 loss, which a reload reproduces', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fg-step0-'));
    const rows = await benchTrain({ presets: ['tiny'], context: 16, batch: 2, steps: 2, acp: [true, false], saveStep0: dir });
    for (const model of ['foxPro', 'transformer']) {
      const sub = join(dir, `${model}-tiny`);
      const meta = JSON.parse(readFileSync(join(sub, 'step0.json'), 'utf8'));
      expect(meta).toMatchObject({ model, preset: 'tiny', B: 2, T: 16, tokens: 'tokens.i32', lr: 1e-3, beta2: 0.95, weightDecay: 0.1 });
      const raw = readFileSync(join(sub, 'tokens.i32'));
      const ids = new Int32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
      expect(Array.from(ids)).toEqual(Array.from(randomIds(2 * 17, 261)));
      const ck = await loadCheckpoint(sub);
      const x = new Int32Array(32);
      const y = new Int32Array(32);
      for (let b = 0; b < 2; b++) {
        x.set(ids.subarray(b * 17, b * 17 + 16), b * 16);
        y.set(ids.subarray(b * 17 + 1, b * 17 + 17), b * 16);
      }
      const loss = ck.model.loss(ck.params, tensor(x, [2, 16], { dtype: 'int32' }), tensor(y, [2, 16], { dtype: 'int32' }));
      expect(loss.itemSync()).toBe(meta.loss);
      // the row that wrote it (precision highest, ACP off) names it
      const row = rows.find((r) => r.case.startsWith(model) && !r.impl.includes('ACP on'));
      expect(row?.note).toContain(`step-0 loss ${meta.loss.toFixed(6)}`);
    }
    expect(existsSync(join(dir, 'foxPro-tiny', 'model.safetensors'))).toBe(true);
  });
  it.skipIf(!gpu.available)('on WebGPU: peak bytes and the time split of a profiled step besides tokens/s', async () => {
    const rows = await benchTrain({ device: 'webgpu', presets: ['tiny'], models: ['foxPro'], context: 16, batch: 2, steps: 2 });
    expect(rows).toHaveLength(1);
    expect(rows[0].failed, rows[0].note).toBeUndefined();
    expect(rows[0].impl).toBe('foxgate webgpu highest ACP off');
    expect(rows[0].note).toMatch(/peak \d+(\.\d+)? (KB|MB) \(/);
    expect(rows[0].note).toMatch(/split attention \d+% \/ matmul \d+% \/ other \d+% of \d+ ms GPU/);
    const d = rows[0].data as Record<string, number>;
    expect(d.attentionMs).toBeGreaterThan(0);
    expect(d.matmulMs).toBeGreaterThan(0);
    expect(d.attentionMs + d.matmulMs + d.otherMs).toBeCloseTo(d.gpuMs, 6);
    // host time queueing a step lies within the step; a steady-state step reuses pooled buffers
    expect(d.hostQueueMs).toBeGreaterThan(0);
    expect(d.hostQueueMs).toBeLessThanOrEqual(d.msPerStep);
    expect(d.buffersCreated).toBe(0);
    const names = (d as unknown as { kernels: { kernel: string }[] }).kernels.map((k) => k.kernel);
    expect(names).toContain('matmul');
    expect(names.every((n) => !n.includes(' '))).toBe(true);
  });
  it.skipIf(!gpu.available)('on WebGPU, profileDetail: the profiled kernels by shape', async () => {
    const rows = await benchTrain({
      device: 'webgpu',
      presets: ['tiny'],
      models: ['transformer'],
      context: 16,
      batch: 2,
      steps: 2,
      profileDetail: true,
    });
    expect(rows[0].failed, rows[0].note).toBeUndefined();
    const names = (rows[0].data as { kernels: { kernel: string }[] }).kernels.map((k) => k.kernel);
    // the tiny preset's token embedding [V=261, 64] as the head: x [32, 64] times its transpose
    expect(names.some((n) => n.startsWith('matmul 32×261×64 '))).toBe(true);
  });
  it('--profile-detail is refused on another suite', async () => {
    const r = await runCli(['bench', 'cpu', '--profile-detail']);
    expect(r.code).toBe(2);
    expect(r.err).toEqual(["foxgate: bench: --profile-detail applies to the train suite only, not 'cpu'"]);
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
