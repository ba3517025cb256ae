import { readFileSync } from 'node:fs';
import { PRESET_NAMES, type PresetName } from '@foxgate/models';
import { checkAllocation, defineCommand, flag } from '../args.js';
import { checkTrainFlags, TRAIN_FLAGS, type TrainFlagOptions, trainFlagOptions } from '../bench/train-flags.js';
import type { BenchRow } from '../bench/types.js';
import { UsageError } from '../errors.js';
import { writeFileAtomic } from '../files.js';
import { formatTable } from '../table.js';

type Suite = (opts: {
  sizes?: number[];
  tfjs?: boolean;
  seconds?: number;
  D?: number;
  /** attention: batch and heads; --variant sparsek: budget k and local window */
  B?: number;
  H?: number;
  k?: number;
  window?: number;
  tiles?: Record<string, object>;
  matmulConfigs?: Record<string, object>;
  /** train, generate: */
  device?: 'cpu' | 'webgpu';
  presets?: PresetName[];
  context?: number;
  batch?: number;
  steps?: number;
  /** train only (bench/train-flags.ts) */
  train?: TrainFlagOptions;
}) => Promise<BenchRow[]>;

/**
 * `--tiles FILE`: kernel variants to time besides the defaults, as JSON
 * `{ "attention": { label: FoxTileOverrides & { deterministic? } }, "matmul": { label: MatmulConfig } }`.
 */
function readTiles(path: string): { attention?: Record<string, object>; matmul?: Record<string, object> } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UsageError(`bench: --tiles ${path}: ${(e as Error).message.split('\n')[0]}`);
  }
  const isRecord = (x: unknown): x is Record<string, object> =>
    x !== null && typeof x === 'object' && !Array.isArray(x) && Object.values(x).every((v) => v !== null && typeof v === 'object');
  if (!isRecord(parsed)) throw new UsageError(`bench: --tiles ${path} must hold a JSON object { "attention"?: {...}, "matmul"?: {...} }`);
  for (const [key, value] of Object.entries(parsed)) {
    if (key !== 'attention' && key !== 'matmul')
      throw new UsageError(`bench: --tiles ${path}: unknown section '${key}' (attention, matmul)`);
    if (!isRecord(value)) throw new UsageError(`bench: --tiles ${path}: '${key}' must map labels to configuration objects`);
  }
  return parsed as { attention?: Record<string, object>; matmul?: Record<string, object> };
}

async function loadSuite(name: string, variant: 'fox' | 'sparsek'): Promise<Suite> {
  switch (name) {
    case 'cpu': {
      const { benchCpuMatmul } = await import('../bench/cpu-matmul.js');
      const { benchCpuAttention } = await import('../bench/cpu-attention.js');
      return async (opts) => [...(await benchCpuMatmul(opts)), ...benchCpuAttention()];
    }
    case 'ops':
      return (await import('../bench/gpu-ops.js')).benchGpuOps as Suite;
    case 'attention':
      if (variant === 'sparsek') return (await import('../bench/sparsek.js')).benchSparsek;
      return (await import('../bench/attention.js')).benchAttention as Suite;
    case 'train':
      return (await import('../bench/train.js')).benchTrain;
    case 'generate':
      return (await import('../bench/generate.js')).benchGenerateRows;
    default:
      throw new UsageError(`unknown bench suite '${name}' (suites: cpu, ops, attention, train, generate)`);
  }
}

export function printRows(rows: readonly BenchRow[]): void {
  const fmt = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(1) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(3));
  console.log(
    formatTable([
      ['bench', 'case', 'impl', 'value', 'unit', 'note'],
      ...rows.map((r) => [r.bench, r.case, r.impl, fmt(r.value), r.unit, r.note ?? '']),
    ]),
  );
}

const SUITES = ['cpu', 'ops', 'attention', 'train', 'generate'] as const;
/** Flags of the train and generate suites only. */
const MODEL_FLAGS = ['preset', 'context', 'steps'] as const;
/** Flags of `attention --variant sparsek` only. */
const SPARSEK_FLAGS = ['sparsekK', 'window'] as const;
const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
/** The largest buffer WebGPU binds (2 GiB); the CPU suite is held to the same. */
const MAX_BUFFER = 2 ** 31;

export const benchCommand = defineCommand(
  {
    name: 'bench',
    summary: 'benchmarks: `bench ops`, `bench attention`, `bench cpu` (prints a table)',
    args: {
      name: 'suite',
      help: [
        'one or more of:',
        'cpu        float32 matmul on the CPU vs tfjs-cpu (GFLOP/s); forgetting attention fused vs composed (ms)',
        'ops        WebGPU: f32 matmul (TFLOP/s) vs tfjs-webgpu, elementwise add and row softmax (GB/s)',
        'attention  WebGPU: forgetting attention fwd / fwd+bwd, with and without ACP (ms); --variant sparsek: SPARSEK',
        '           attention vs full FoX vs sliding window, time against T at a fixed k + window (ms, µs/token)',
        'train      a full training step (fwd, bwd, AdamW) of foxPro and transformer per preset (tokens/s; checked: the loss falls)',
        'generate   decode tokens/s with the KV cache vs recomputing the prefix; cache bytes with and without ACP eviction',
      ].join('\n'),
      min: 1,
      max: SUITES.length,
      choices: SUITES,
    },
    flags: {
      sizes: flag.intList({ help: 'matrix sizes n (cpu, ops) or sequence lengths T (attention)', min: 1, max: 2 ** 17 }),
      seconds: flag.float({ help: 'GPU time per timed case of ops and attention', min: 0, minExclusive: true, max: 600, default: 1 }),
      'head-dim': flag.positiveInt({ help: "attention's head dim D", max: 256, defaultHint: '64' }),
      variant: flag.enum(['fox', 'sparsek'] as const, {
        help: 'attention: fox (forgetting attention, ACP off and on) or sparsek (SPARSEK vs FoX vs sliding window)',
        defaultHint: 'fox',
      }),
      heads: flag.positiveInt({ help: 'attention: heads H', max: 1024, defaultHint: '16' }),
      'sparsek-k': flag.positiveInt({
        help: 'attention --variant sparsek: older positions selected per query',
        max: 1 << 16,
        defaultHint: '256',
      }),
      window: flag.nonNegativeInt({
        help: 'attention --variant sparsek: local window (the sliding-window rows attend to k + window)',
        max: 1 << 16,
        defaultHint: '256',
      }),
      ...TRAIN_FLAGS,
      json: flag.file({ help: 'also write the rows to PATH (checked before any benchmark runs)', writable: true }),
      'no-tfjs': flag.bool({ help: 'skip the tfjs comparison rows' }),
      device: flag.enum(['cpu', 'webgpu'] as const, {
        help: 'train, generate, attention --variant sparsek: where to run',
        defaultHint: 'cpu (train, generate), webgpu (attention)',
      }),
      preset: flag.list({ help: 'train, generate: model sizes', choices: PRESET_NAMES, defaultHint: 'tiny,small' }),
      context: flag.positiveInt({
        help: 'train: context T; generate: prompt tokens',
        max: 1 << 20,
        defaultHint: '64 (train), 4096 (generate)',
      }),
      batch: flag.positiveInt({ help: 'train: rows per step; attention: batch B', max: 1 << 16, defaultHint: '8 (train), 4 (attention)' }),
      steps: flag.int({
        help: 'train: timed steps (after a warm-up one); generate: new tokens',
        min: 2,
        max: 1e6,
        defaultHint: '3 (train), 32 (generate)',
      }),
      tiles: flag.file({
        help: 'JSON kernel variants to time besides the defaults: { "attention": { label: tiles }, "matmul": { label: config } }',
      }),
    },
    notes:
      'Longer --seconds average more iterations (a T=16k fwd+bwd case gets three per second). Without the tfjs\npackages installed, bench prints a notice and times foxgate alone.',
    examples: [
      'foxgate bench cpu --sizes 256,512',
      'foxgate bench attention --seconds 2 --head-dim 128 --json bench.json',
      'foxgate bench attention --variant sparsek --sizes 2048,8192 --sparsek-k 128 --window 384',
    ],
  },
  async ({ flags, args }) => {
    const suites = [...new Set(args)];
    if (flags.headDim !== undefined) {
      const other = suites.find((n) => n !== 'attention');
      if (other) throw new UsageError(`bench: --head-dim applies to the attention suite only, not '${other}'`);
    }
    for (const k of MODEL_FLAGS) {
      const other = flags[k] !== undefined && suites.find((n) => n !== 'train' && n !== 'generate');
      if (other) throw new UsageError(`bench: --${k} applies to the train and generate suites only, not '${other}'`);
    }
    const variant = flags.variant ?? 'fox';
    const sparsek = variant === 'sparsek';
    for (const [k, ok, where] of [
      ['variant', (n: string) => n === 'attention', 'the attention suite only'],
      ['heads', (n: string) => n === 'attention', 'the attention suite only'],
      ['batch', (n: string) => n === 'attention' || n === 'train', 'the train and attention suites only'],
    ] as const) {
      const other = flags[k] !== undefined && suites.find((n) => !ok(n));
      if (other) throw new UsageError(`bench: --${k} applies to ${where}, not '${other}'`);
    }
    for (const k of SPARSEK_FLAGS) {
      if (flags[k] === undefined) continue;
      if (!sparsek) throw new UsageError(`bench: --${kebab(k)} applies to attention --variant sparsek only`);
      const other = suites.find((n) => n !== 'attention');
      if (other) throw new UsageError(`bench: --${kebab(k)} applies to attention --variant sparsek only, not '${other}'`);
    }
    if (flags.device !== undefined) {
      const other = suites.find((n) => n !== 'train' && n !== 'generate' && !(n === 'attention' && sparsek));
      if (other)
        throw new UsageError(
          `bench: --device applies to the train and generate suites and to attention --variant sparsek, not '${other}'${other === 'attention' ? ' (fox variant: WebGPU only)' : ''}`,
        );
    }
    const attnB = flags.batch ?? 4;
    const attnH = flags.heads ?? 16;
    for (const n of flags.sizes ?? []) {
      for (const s of suites) {
        if (s === 'attention')
          checkAllocation(
            `bench attention: --sizes ${n} (B=${attnB}, H=${attnH}, D=${flags.headDim ?? 64})`,
            attnB * attnH * (flags.headDim ?? 64) * n,
            4,
            MAX_BUFFER,
          );
        else checkAllocation(`bench ${s}: --sizes ${n} (an ${n}×${n} float32 matrix)`, n * n, 4, MAX_BUFFER);
      }
    }
    checkTrainFlags(flags, suites);
    const tiles = flags.tiles !== undefined ? readTiles(flags.tiles) : {};
    const rows: BenchRow[] = [];
    for (const name of suites) {
      const suite = await loadSuite(name, variant);
      const r = await suite({
        sizes: flags.sizes as number[] | undefined,
        tfjs: !flags.noTfjs,
        seconds: flags.seconds,
        D: flags.headDim,
        B: name === 'attention' ? flags.batch : undefined,
        H: flags.heads,
        k: flags.sparsekK,
        window: flags.window,
        tiles: tiles.attention,
        matmulConfigs: tiles.matmul,
        device: flags.device,
        presets: flags.preset,
        context: flags.context,
        batch: flags.batch,
        steps: flags.steps,
        train: name === 'train' ? trainFlagOptions(flags) : undefined,
      });
      printRows(r);
      rows.push(...r);
    }
    if (flags.json) writeFileAtomic(flags.json, `${JSON.stringify({ date: new Date().toISOString(), rows }, null, 2)}\n`);
    const failed = rows.filter((r) => r.failed);
    if (failed.length > 0) {
      console.error(`bench: ${failed.length} case(s) FAILED: ${failed.map((r) => `${r.case} (${r.impl})`).join('; ')}`);
      return 1;
    }
    return 0;
  },
);
