import { fail } from '@foxgate/tensor';

/**
 * Where the training data comes from:
 * - `synthetic:mqar`, `synthetic:needle`, `synthetic:dialog` — built-in tasks, no files;
 * - `text:PATH` (or a bare path) — a text file or a folder of them, packed into rows of `context` tokens;
 * - `dailydialog:DIR` — DailyDialog's three split files; `jsonl:FILE` — JSONL dialogs.
 */
export type DataSpec = string;

/** A training run's settings: everything `train` needs, JSON-serialisable (saved as the run's config.json). */
export interface RunConfig {
  /** Model family and size, plus any model-config field (`hidden_size`, `num_hidden_layers`, …). */
  model: { model: string; preset: string; [field: string]: unknown };
  data: DataSpec;
  /** Options of a synthetic task (see `createTask`). */
  task: Record<string, unknown>;
  /** Tokenizer of text and dialog data. */
  tokenizer: 'byte' | 'gpt2';
  /** The training context length T. */
  context: number;
  /** Dialog data: how many past utterances a response sees (a number or 'all'). */
  dialogContext: number | 'all';
  /** Rows per step. */
  batch: number;
  /** Micro-batches accumulated per step. */
  accumulate: number;
  steps: number;
  /** Peak learning rate; linear warmup over `warmup` of the tokens, then cosine to `minLrRatio`·peak. */
  lr: number;
  warmup: number;
  minLrRatio: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  /** Global gradient-norm clip (0: off). */
  clip: number;
  device: 'cpu' | 'webgpu' | 'auto';
  acp: boolean;
  /** Packed text: reset forgetting attention at document starts (FoX models only). */
  docResets: boolean;
  seed: number;
  /** Validation every N steps (0: only at the end); on `evalRows` rows. */
  evalEvery: number;
  evalRows: number;
  /** Checkpoint every N steps (0: only at the end). */
  checkpointEvery: number;
  /** A metrics line every N steps. */
  logEvery: number;
  /** Length-extrapolation factors evaluated at the end (e.g. [2, 4]). */
  extrapolate: number[];
  /** Fraction of documents held out for validation (text data). */
  validation: number;
  /**
   * A new run starts from this checkpoint's weights (a run folder, its `checkpoint/`, or a Hugging
   * Face folder): the same model (fine-tune), or `sparsek` from `transformer`/`transformerPro` with
   * a fresh scoring network. The model config comes from the checkpoint. null: a fresh init.
   */
  initFrom: string | null;
}

export const DEFAULT_RUN: RunConfig = {
  model: { model: 'foxPro', preset: 'tiny' },
  data: 'synthetic:mqar',
  task: {},
  tokenizer: 'byte',
  context: 32,
  dialogContext: 'all',
  batch: 32,
  accumulate: 1,
  steps: 120,
  lr: 3e-3,
  warmup: 0.1,
  minLrRatio: 0.1,
  weightDecay: 0.1,
  beta1: 0.9,
  beta2: 0.95,
  clip: 1,
  device: 'auto',
  acp: true,
  docResets: false,
  seed: 0,
  evalEvery: 40,
  evalRows: 64,
  checkpointEvery: 60,
  logEvery: 10,
  extrapolate: [2, 16],
  validation: 0.05,
  initFrom: null,
};

type Check = (v: unknown) => string | null;
const int =
  (min: number, max = 2 ** 31 - 1): Check =>
  (v) =>
    typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? null : `an integer in [${min}, ${max}]`;
const num =
  (min: number, max: number, open = false): Check =>
  (v) =>
    typeof v === 'number' && Number.isFinite(v) && (open ? v > min : v >= min) && v <= max
      ? null
      : `a number in ${open ? '(' : '['}${min}, ${max}]`;
const oneOf =
  (...xs: string[]): Check =>
  (v) =>
    typeof v === 'string' && xs.includes(v) ? null : `one of ${xs.map((x) => `'${x}'`).join(', ')}`;
const bool: Check = (v) => (typeof v === 'boolean' ? null : 'true or false');

const CHECKS: { [K in keyof RunConfig]: Check } = {
  model: (v) => (v !== null && typeof v === 'object' && !Array.isArray(v) ? null : 'an object like {"model": "foxPro", "preset": "tiny"}'),
  data: (v) => (typeof v === 'string' && v.length > 0 ? null : 'a data spec such as "synthetic:mqar", "text:PATH" or "dailydialog:DIR"'),
  task: (v) => (v !== null && typeof v === 'object' && !Array.isArray(v) ? null : 'an object of task options'),
  tokenizer: oneOf('byte', 'gpt2'),
  context: int(2, 1 << 20),
  dialogContext: (v) => (v === 'all' || (typeof v === 'number' && Number.isInteger(v) && v >= 0) ? null : "an integer >= 0 or 'all'"),
  batch: int(1, 1 << 16),
  accumulate: int(1, 1 << 12),
  steps: int(0, 1e9),
  lr: num(0, 10, true),
  warmup: num(0, 1),
  minLrRatio: num(0, 1),
  weightDecay: num(0, 10),
  beta1: num(0, 0.999999),
  beta2: num(0, 0.999999),
  clip: num(0, 1e9),
  device: oneOf('cpu', 'webgpu', 'auto'),
  acp: bool,
  docResets: bool,
  seed: int(0, 2 ** 31 - 1),
  evalEvery: int(0, 1e9),
  evalRows: int(1, 1 << 20),
  checkpointEvery: int(0, 1e9),
  logEvery: int(1, 1e9),
  extrapolate: (v) =>
    Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 2 && x <= 64)
      ? null
      : 'a list of integers in [2, 64]',
  validation: num(0, 0.5, true),
  initFrom: (v) => (v === null || (typeof v === 'string' && v.length > 0) ? null : 'null or the path of a run or checkpoint folder'),
};

/** Defaults, then `overrides` (a config file's JSON, then flags); every field checked, unknown ones refused. */
export function runConfig(overrides: Record<string, unknown> = {}, where = 'config'): RunConfig {
  const op = 'train';
  if (overrides === null || typeof overrides !== 'object' || Array.isArray(overrides)) fail(op, `${where} must be a JSON object`);
  for (const k of Object.keys(overrides)) {
    if (!(k in CHECKS)) fail(op, `${where}: unknown field '${k}' (fields: ${Object.keys(CHECKS).join(', ')})`);
  }
  const model = { ...DEFAULT_RUN.model, ...((overrides.model as object) ?? {}) };
  const cfg = { ...DEFAULT_RUN, ...overrides, model } as RunConfig;
  for (const [k, check] of Object.entries(CHECKS)) {
    const why = check(cfg[k as keyof RunConfig]);
    if (why) fail(op, `${where}: ${k} must be ${why}, got ${JSON.stringify(cfg[k as keyof RunConfig])}`);
  }
  return cfg;
}
