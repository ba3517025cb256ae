import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { foxF16Config } from '@foxgate/attention/dev';
import { flattenTree, noGrad, valueAndGrad } from '@foxgate/autograd';
import { createModel, type Model, type ModelName, type ModelParams, type PresetName, saveCheckpoint } from '@foxgate/models';
import {
  type DispatchProfile,
  dispose,
  emptyCache,
  fail,
  initWebGPU,
  type MatmulPrecision,
  memoryStats,
  resetPeakMemory,
  rngKey,
  type Tensor,
  tensor,
  type WebGPUBackend,
} from '@foxgate/tensor';
import { adamw, openDevice, type RunDevice } from '@foxgate/train';
import { formatBytes } from '../args.js';
import { failedRow, firstLine } from './failed.js';
import type { TrainFlagOptions } from './train-flags.js';
import type { BenchRow } from './types.js';

export interface BenchTrainOptions {
  device?: 'cpu' | 'webgpu';
  presets?: readonly PresetName[];
  models?: readonly ModelName[];
  /** Context length T (default 64). */
  context?: number;
  /** Rows per step (default 8). */
  batch?: number;
  /** Instead of `batch`: B doubled from 1 while a full step fits (see `memoryCap`), then timed. */
  maxBatch?: boolean;
  /** Timed steps after one untimed warm-up step (default 3, at least 2). */
  steps?: number;
  /** ACP settings to run for models with forget gates (default [false]); softmax models run once. */
  acp?: readonly boolean[];
  /** WebGPU matmul precisions to run (default ['highest']); the CPU ignores them. */
  precisions?: readonly MatmulPrecision[];
  /** `maxBatch`: stop doubling before the peak bytes in use would pass this (default: until a step fails). */
  memoryCap?: number;
  /**
   * Writes, per model and preset, `DIR/<model>-<preset>/` for the PyTorch step-0 check: the
   * initial weights (`model.safetensors`, `config.json`), the token batch (`tokens.i32`: int32
   * little-endian `[B, T+1]`) and `step0.json` (the loss at step 0 with precision 'highest' and
   * ACP off). Needs such a case among the runs.
   */
  saveStep0?: string;
  /** The profiled step's kernels by detail (a matmul per shape, layouts and tiles; `data.kernels`, 40 of them) instead of by name (12). */
  profileDetail?: boolean;
  /** The same options as the command's train flags hand them over (merged over the above). */
  train?: TrainFlagOptions;
}

export const BENCH_TRAIN_DEFAULTS = {
  presets: ['tiny', 'small'],
  models: ['foxPro', 'transformer'],
  context: 64,
  batch: 8,
  steps: 3,
} as const;

/** Seeded token ids in [0, V) (a linear congruential stream: the same batch for every model). */
export function randomIds(n: number, V: number): Int32Array {
  let s = 2463534242;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s % V;
  }
  return out;
}

/** Why the timed losses show a broken step (null: finite, and the last below the first). */
export function lossProblem(losses: readonly number[]): string | null {
  if (losses.length < 2) return 'fewer than 2 timed steps';
  if (!losses.every(Number.isFinite)) return 'a loss is not finite';
  return losses[losses.length - 1] < losses[0] ? null : 'the loss did not decrease';
}

/** `attention 41% / matmul 47% / other 12% of 812 ms GPU` from a profile of one step. */
export function splitNote(p: DispatchProfile): string {
  const pct = (ms: number) => `${p.totalMs > 0 ? Math.round((100 * ms) / p.totalMs) : 0}%`;
  const f = p.families;
  return `split attention ${pct(f.attention)} / matmul ${pct(f.matmul)} / other ${pct(f.other)} of ${p.totalMs.toFixed(0)} ms GPU`;
}

/** The batch `[B, T+1]` of ids as inputs and aligned targets on `dev`. */
function batchTensors(ids: Int32Array, B: number, T: number, dev: RunDevice): [Tensor, Tensor] {
  const x = new Int32Array(B * T);
  const y = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    x.set(ids.subarray(b * (T + 1), b * (T + 1) + T), b * T);
    y.set(ids.subarray(b * (T + 1) + 1, (b + 1) * (T + 1)), b * T);
  }
  return [tensor(x, [B, T], { dtype: 'int32', backend: dev.backend }), tensor(y, [B, T], { dtype: 'int32', backend: dev.backend })];
}

interface Case {
  model: ModelName;
  preset: PresetName;
  T: number;
  B: number;
  steps: number;
  acp: boolean | null;
  precision: MatmulPrecision;
  /** Write the step-0 check files here. */
  step0Dir?: string;
  /** Profile by kernel detail (`BenchTrainOptions.profileDetail`). */
  profileDetail?: boolean;
}

function implOf(c: Case, dev: RunDevice): string {
  return `foxgate ${dev.name}${dev.name === 'webgpu' ? ` ${c.precision}` : ''}${c.acp === null ? '' : ` ACP ${c.acp ? 'on' : 'off'}`}`;
}

/** A training loop's state: params, AdamW state, the batch, and one full step. */
function trainer(m: Model, B: number, T: number, acp: boolean, dev: RunDevice) {
  const V = m.config.vocab_size;
  let params: ModelParams = m.init(rngKey(0), { backend: dev.backend });
  const opt = adamw<ModelParams>({ lr: 1e-3 });
  let state = opt.init(params);
  const ids = randomIds(B * (T + 1), V);
  const [xs, ys] = batchTensors(ids, B, T, dev);
  const lossOpts = acp ? { acp: true } : {};
  const lossFn = valueAndGrad((p: ModelParams, a: Tensor, t: Tensor) => m.loss(p, a, t, lossOpts));
  const host = { queueMs: 0 };
  return {
    ids,
    params: () => params,
    /** Host milliseconds spent queueing the steps (building the graph and encoding its dispatches), summed. */
    host,
    /** forward, backward, AdamW queued, then the loss read back (the only readback: it waits for the update) */
    async step(): Promise<number> {
      const t0 = performance.now();
      const r = lossFn(params, xs, ys);
      ({ params, state } = opt.updateAndDispose(params, r.grads, state));
      dispose(r.grads);
      host.queueMs += performance.now() - t0;
      try {
        return (await r.value.data())[0];
      } finally {
        r.value.dispose();
      }
    },
    /** the loss of the current parameters, forward only */
    async loss(): Promise<number> {
      const l = noGrad(() => m.loss(params, xs, ys, lossOpts));
      try {
        return (await l.data())[0];
      } finally {
        l.dispose();
      }
    },
    /** the smallest leaf: reading it waits for the last update on a GPU queue */
    async sync(): Promise<void> {
      const leaves = [...flattenTree(params).values()];
      const small = leaves.reduce((a, t) => (t.size < a.size ? t : a), leaves[0]);
      await small.data();
    },
    dispose(): void {
      dispose([params, state, xs, ys]);
    },
  };
}

const webgpuOf = (dev: RunDevice) => (dev.name === 'webgpu' ? (dev.backend as unknown as WebGPUBackend) : null);

/**
 * One case: `steps` full training steps (forward, backward, AdamW at lr 1e-3) of `model` at
 * `preset` on one fixed batch of random tokens, after a warm-up step. Every step reads its loss
 * back after queueing the update (the device is synchronised per step); the clock stops once the
 * last update is done. The peak counts the bytes live during the timed steps. On WebGPU one more
 * step runs under a timestamp profile for the time split (not timed). The row FAILS when a loss
 * is not finite or the last loss is not below the first (one batch, repeated: a working step
 * always lowers it).
 */
async function benchOne(c: Case, dev: RunDevice, note = ''): Promise<BenchRow> {
  const kase = `${c.model} ${c.preset} B=${c.B} T=${c.T}`;
  const impl = implOf(c, dev);
  const gpu = webgpuOf(dev);
  let run: ReturnType<typeof trainer> | null = null;
  try {
    gpu?.setPrecision(c.precision);
    const m = createModel({ model: c.model, preset: c.preset });
    run = trainer(m, c.B, c.T, c.acp === true, dev);
    let step0: number | undefined;
    if (c.step0Dir) {
      step0 = await run.loss();
      await writeStep0(c.step0Dir, m, run.params(), run.ids, c, step0);
    }
    await run.step();
    await run.sync();
    resetPeakMemory();
    const created0 = memoryStats().backends[dev.name]?.buffersCreated ?? 0;
    run.host.queueMs = 0;
    const losses: number[] = [];
    const t0 = performance.now();
    for (let i = 0; i < c.steps; i++) losses.push(await run.step());
    await run.sync();
    const seconds = (performance.now() - t0) / 1000;
    const queueMs = run.host.queueMs / c.steps;
    const mem = memoryStats().backends[dev.name];
    const buffersCreated = (mem?.buffersCreated ?? 0) - created0;
    const peak = mem?.peakBytes ?? 0;
    const held = mem?.bytesInUse ?? 0;
    let profile: DispatchProfile | null = null;
    if (gpu) {
      gpu.startProfile({ detail: c.profileDetail === true });
      await run.step();
      profile = await gpu.stopProfile();
    }
    const problem = lossProblem(losses);
    const curve = `loss ${losses[0].toFixed(4)} → ${losses[losses.length - 1].toFixed(4)} over ${c.steps} steps`;
    const ms = (1000 * seconds) / c.steps;
    // the timing stays in the note: a failed check still says how fast the step ran
    if (problem) return failedRow('train', kase, impl, `${problem} (${curve}; ${ms.toFixed(1)} ms/step unchecked)`);
    const parts = [`${ms.toFixed(1)} ms/step`, curve, `${(m.countParams() / 1e6).toFixed(2)}M params`];
    parts.push(`peak ${formatBytes(peak)} (${formatBytes(held)} between steps)`);
    if (profile) parts.push(splitNote(profile));
    if (gpu && c.precision === 'high')
      parts.push(
        gpu.tensorCores
          ? foxF16Config(gpu, m.config.hidden_size / m.config.num_heads, null)
            ? 'attention forward f16, backward f32'
            : 'attention f32 (head dim outside the f16 kernel)'
          : `no tensor cores (${gpu.info.tensorCores?.reason}): f32 products`,
      );
    if (step0 !== undefined) parts.push(`step-0 loss ${step0.toFixed(6)}`);
    if (note) parts.push(note);
    const data: Record<string, unknown> = {
      model: c.model,
      preset: c.preset,
      B: c.B,
      T: c.T,
      steps: c.steps,
      precision: c.precision,
      acp: c.acp,
      msPerStep: ms,
      peakBytes: peak,
      heldBytes: held,
      losses,
      // host time per step queueing its work (graph and dispatch encoding), and GPU buffers created during the timed steps
      hostQueueMs: queueMs,
      buffersCreated,
      deviceBytes: mem?.deviceBytes,
      params: m.countParams(),
    };
    if (step0 !== undefined) data.step0Loss = step0;
    if (profile) {
      data.gpuMs = profile.totalMs;
      data.attentionMs = profile.families.attention;
      data.matmulMs = profile.families.matmul;
      data.otherMs = profile.families.other;
      data.kernels = profile.kernels
        .slice(0, c.profileDetail ? 40 : 12)
        .map((k) => ({ kernel: k.kernel, dispatches: k.dispatches, ms: k.ms }));
    }
    return { bench: 'train', case: kase, impl, value: (c.B * c.T * c.steps) / seconds, unit: 'tok/s', note: parts.join(', '), data };
  } catch (e) {
    if (gpu?.engine.profiler) await gpu.stopProfile().catch(() => undefined);
    return failedRow('train', kase, impl, firstLine(e));
  } finally {
    run?.dispose();
    if (gpu) emptyCache();
  }
}

/** The step-0 check files of one model (see `BenchTrainOptions.saveStep0`). */
async function writeStep0(dir: string, m: Model, params: ModelParams, ids: Int32Array, c: Case, loss: number): Promise<void> {
  await saveCheckpoint(dir, params, m.config, { step0Loss: loss, batch: c.B, context: c.T, tokens: 'tokens.i32' });
  writeFileSync(join(dir, 'tokens.i32'), new Uint8Array(ids.buffer, ids.byteOffset, ids.byteLength));
  const json = {
    model: c.model,
    preset: c.preset,
    B: c.B,
    T: c.T,
    loss,
    tokens: 'tokens.i32',
    lr: 1e-3,
    beta1: 0.9,
    beta2: 0.95,
    eps: 1e-8,
    weightDecay: 0.1,
  };
  writeFileSync(join(dir, 'step0.json'), `${JSON.stringify(json, null, 2)}\n`);
}

/**
 * `maxBatch`: B = 1, 2, 4, ... while one full step fits (no error, and the peak bytes, doubled,
 * stay under `cap` when given); returns the largest B that fitted and what stopped the doubling.
 */
async function maxBatch(
  model: ModelName,
  preset: PresetName,
  T: number,
  dev: RunDevice,
  cap?: number,
): Promise<{ B: number; why: string }> {
  const m = createModel({ model, preset });
  let best = 0;
  let why = '';
  for (let B = 1; B <= 1 << 16; B *= 2) {
    let run: ReturnType<typeof trainer> | null = null;
    try {
      resetPeakMemory();
      run = trainer(m, B, T, false, dev);
      await run.step();
      await run.sync();
      const peak = memoryStats().backends[dev.name]?.peakBytes ?? 0;
      best = B;
      if (cap !== undefined && 2 * peak > cap) {
        why = `B=${2 * B} would pass the memory cap ${formatBytes(cap)} (peak ${formatBytes(peak)} at B=${B})`;
        break;
      }
    } catch (e) {
      why = `B=${B} failed: ${firstLine(e)}`;
      break;
    } finally {
      try {
        run?.dispose();
      } catch {
        // a failed step may leave its tensors half made
      }
      if (dev.name === 'webgpu') emptyCache();
    }
  }
  return { B: best, why };
}

/**
 * `foxgate bench train`: tokens per second of a full training step (forward, backward, AdamW)
 * per model, preset, matmul precision and ACP setting, each row checked (a finite loss that
 * decreases over the timed steps); on WebGPU with the peak bytes and the GPU time split
 * (attention, matmul, other) of one profiled step.
 */
export async function benchTrain(opts: BenchTrainOptions = {}): Promise<BenchRow[]> {
  const o: BenchTrainOptions = { ...opts, ...opts.train };
  const T = o.context ?? BENCH_TRAIN_DEFAULTS.context;
  const batch = o.batch ?? BENCH_TRAIN_DEFAULTS.batch;
  const steps = o.steps ?? BENCH_TRAIN_DEFAULTS.steps;
  const precisions = o.precisions ?? ['highest'];
  const acps = o.acp ?? [false];
  const models = o.models ?? BENCH_TRAIN_DEFAULTS.models;
  const presets = o.presets ?? BENCH_TRAIN_DEFAULTS.presets;
  const precs = o.device === 'webgpu' ? precisions : (['highest'] as const);
  if (o.saveStep0 !== undefined) {
    if (!(precs.includes('highest') && acps.includes(false)))
      fail('bench train', "saveStep0 needs a case with precision 'highest' and ACP off");
    mkdirSync(o.saveStep0, { recursive: true });
  }
  if (o.device === 'webgpu') {
    // the profile wants unrounded timestamps and 'high' the f16 toggles: both fixed when the instance is made
    try {
      await initWebGPU({ profiling: true, tensorCores: precs.includes('high') });
    } catch {
      // openDevice says why there is no adapter
    }
  }
  const dev = await openDevice(o.device ?? 'cpu');
  const rows: BenchRow[] = [];
  try {
    for (const model of models)
      for (const preset of presets) {
        const gated = createModel({ model, preset }).config.fgate_type !== 'none';
        let B = batch;
        let note = '';
        if (o.maxBatch) {
          const r = await maxBatch(model, preset, T, dev, o.memoryCap);
          if (r.B === 0) {
            rows.push(failedRow('train', `${model} ${preset} B=max T=${T}`, `foxgate ${dev.name}`, `not even B=1 fits: ${r.why}`));
            continue;
          }
          B = r.B;
          note = `largest B: ${r.why}`;
        }
        let saved = false;
        for (const precision of precs)
          for (const acp of gated ? acps : [null]) {
            const wantsStep0 = o.saveStep0 !== undefined && !saved && precision === 'highest' && acp !== true;
            const step0Dir = wantsStep0 ? join(o.saveStep0 as string, `${model}-${preset}`) : undefined;
            if (wantsStep0) saved = true;
            rows.push(await benchOne({ model, preset, T, B, steps, acp, precision, step0Dir, profileDetail: o.profileDetail }, dev, note));
          }
      }
  } finally {
    await dev.release();
  }
  return rows;
}
