import { flattenTree, valueAndGrad } from '@foxgate/autograd';
import { createModel, type ModelName, type ModelParams, type PresetName } from '@foxgate/models';
import { dispose, memoryStats, rngKey, type Tensor, tensor } from '@foxgate/tensor';
import { adamw, openDevice, type RunDevice } from '@foxgate/train';
import { formatBytes } from '../args.js';
import { failedRow, firstLine } from './failed.js';
import type { BenchRow } from './types.js';

export interface BenchTrainOptions {
  device?: 'cpu' | 'webgpu';
  presets?: readonly PresetName[];
  models?: readonly ModelName[];
  /** Context length T (default 64). */
  context?: number;
  /** Rows per step (default 8). */
  batch?: number;
  /** Timed steps after one untimed warm-up step (default 3, at least 2). */
  steps?: number;
}

export const BENCH_TRAIN_DEFAULTS = {
  presets: ['tiny', 'small'],
  models: ['foxPro', 'transformer'],
  context: 64,
  batch: 8,
  steps: 3,
} as const;

/** Seeded token ids in [0, V) (a linear congruential stream: the same batch for every model). */
function randomIds(n: number, V: number): Int32Array {
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

/** Bytes in use on the WebGPU backend now (undefined on the CPU). */
function gpuBytes(dev: RunDevice): number | undefined {
  return dev.name === 'webgpu' ? memoryStats().backends.webgpu?.bytesInUse : undefined;
}

/**
 * One case: `steps` full training steps (forward, backward, AdamW at lr 1e-3) of `model` at
 * `preset` on one fixed batch of random tokens, after a warm-up step. Every step reads its loss
 * back (the device is synchronised per step); the clock stops once the last update is done.
 * The row FAILS when a loss is not finite or the last loss is not below the first (one batch,
 * repeated: a working step always lowers it).
 */
async function benchOne(model: ModelName, preset: PresetName, T: number, B: number, steps: number, dev: RunDevice): Promise<BenchRow> {
  const kase = `${model} ${preset} B=${B} T=${T}`;
  const impl = `foxgate ${dev.name}`;
  const held: unknown[] = [];
  try {
    const m = createModel({ model, preset });
    const V = m.config.vocab_size;
    let params: ModelParams = m.init(rngKey(0), { backend: dev.backend });
    const opt = adamw<ModelParams>({ lr: 1e-3 });
    let state = opt.init(params);
    held.push(() => [params, state]);
    const ids = randomIds(B * (T + 1), V);
    const x = new Int32Array(B * T);
    const y = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      x.set(ids.subarray(b * (T + 1), b * (T + 1) + T), b * T);
      y.set(ids.subarray(b * (T + 1) + 1, (b + 1) * (T + 1)), b * T);
    }
    const xs = tensor(x, [B, T], { dtype: 'int32', backend: dev.backend });
    const ys = tensor(y, [B, T], { dtype: 'int32', backend: dev.backend });
    held.push(() => [xs, ys]);
    const lossFn = valueAndGrad((p: ModelParams, a: Tensor, t: Tensor) => m.loss(p, a, t));
    let peak = 0;
    const step = async (): Promise<number> => {
      const r = lossFn(params, xs, ys);
      const loss = (await r.value.data())[0];
      r.value.dispose();
      peak = Math.max(peak, gpuBytes(dev) ?? 0);
      ({ params, state } = opt.updateAndDispose(params, r.grads, state));
      dispose(r.grads);
      return loss;
    };
    // the smallest leaf: reading it waits for the last update on a GPU queue
    const sync = async () => {
      const leaves = [...flattenTree(params).values()];
      const small = leaves.reduce((a, t) => (t.size < a.size ? t : a), leaves[0]);
      await small.data();
    };
    await step();
    await sync();
    const losses: number[] = [];
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) losses.push(await step());
    await sync();
    const seconds = (performance.now() - t0) / 1000;
    const problem = lossProblem(losses);
    const curve = `loss ${losses[0].toFixed(4)} → ${losses[losses.length - 1].toFixed(4)} over ${steps} steps`;
    const mem = dev.name === 'webgpu' ? `, peak ${formatBytes(peak)} in use` : '';
    const ms = `${((1000 * seconds) / steps).toFixed(1)} ms/step`;
    if (problem) {
      return failedRow('train', kase, impl, `${problem} (${curve})`);
    }
    return {
      bench: 'train',
      case: kase,
      impl,
      value: (B * T * steps) / seconds,
      unit: 'tok/s',
      note: `${ms}, ${curve}, ${(m.countParams() / 1e6).toFixed(2)}M params${mem}`,
    };
  } catch (e) {
    return failedRow('train', kase, impl, firstLine(e));
  } finally {
    for (const h of held) dispose((h as () => unknown)());
  }
}

/**
 * `foxgate bench train`: tokens per second of a full training step (forward, backward, AdamW)
 * per model and preset, each row checked (a finite loss that decreases over the timed steps).
 */
export async function benchTrain(o: BenchTrainOptions = {}): Promise<BenchRow[]> {
  const T = o.context ?? BENCH_TRAIN_DEFAULTS.context;
  const B = o.batch ?? BENCH_TRAIN_DEFAULTS.batch;
  const steps = o.steps ?? BENCH_TRAIN_DEFAULTS.steps;
  const dev = await openDevice(o.device ?? 'cpu');
  const rows: BenchRow[] = [];
  try {
    for (const model of o.models ?? BENCH_TRAIN_DEFAULTS.models)
      for (const preset of o.presets ?? BENCH_TRAIN_DEFAULTS.presets) rows.push(await benchOne(model, preset, T, B, steps, dev));
  } finally {
    await dev.release();
  }
  return rows;
}
