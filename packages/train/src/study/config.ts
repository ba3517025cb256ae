/**
 * The dialog context-length study's settings: a grid of (model, training N) cells trained with
 * the same token budget and seed on DailyDialog, each evaluated at every test N on the test split.
 */
import { fail } from '@foxgate/tensor';

/** A context length in utterances: a number of previous utterances, or all of them. */
export type DialogContext = number | 'all';

/** A history-length bucket: samples with lo ≤ previous utterances ≤ hi (hi null: no upper end). */
export interface HistoryBucket {
  lo: number;
  hi: number | null;
}

/** The buckets of question (2): 1, 2–3, 4–6, 7–10, 11+ previous utterances. */
export const DEFAULT_HISTORY_BUCKETS: readonly HistoryBucket[] = [
  { lo: 1, hi: 1 },
  { lo: 2, hi: 3 },
  { lo: 4, hi: 6 },
  { lo: 7, hi: 10 },
  { lo: 11, hi: null },
];

export interface DialogStudyOptions {
  /** The DailyDialog folder (dialogues_train/validation/test.txt). */
  data: string;
  /** Model families, e.g. ['transformer', 'foxPro']. */
  models: string[];
  /** Training context lengths N (previous utterances). */
  trainContexts: DialogContext[];
  /** Test context lengths N; each cell is also evaluated at its own training N. */
  testContexts: DialogContext[];
  /** Model size preset (default 'tiny'). */
  preset?: string;
  /** Model-config fields over the preset (hidden_size, num_hidden_layers, num_heads, …). */
  modelFields?: Record<string, unknown>;
  /** Optimizer steps per cell (default 300). */
  steps?: number;
  /** Rows per step (default 16). */
  batch?: number;
  /** Tokens per row T (default 512): the token budget per cell is steps × batch × T. */
  context?: number;
  lr?: number;
  seed?: number;
  tokenizer?: 'byte' | 'gpt2';
  device?: 'cpu' | 'webgpu' | 'auto';
  /** Use only the first N dialogs of the training and validation splits (a subset). */
  maxDialogs?: number;
  /** Use only the first N test dialogs (default: maxDialogs, else all). */
  maxTestDialogs?: number;
  /** Rows per evaluation batch (default 32). */
  evalBatch?: number;
  /** Checkpoint every N steps within a cell (default 50; a cell's end always checkpoints). */
  checkpointEvery?: number;
  buckets?: readonly HistoryBucket[];
}

export type ResolvedStudyOptions = Required<Omit<DialogStudyOptions, 'maxDialogs' | 'maxTestDialogs'>> & {
  maxDialogs: number | null;
  maxTestDialogs: number | null;
};

const OP = 'dialogStudy';

function checkContexts(name: string, v: unknown): DialogContext[] {
  if (!Array.isArray(v) || v.length === 0) fail(OP, `${name} must be a non-empty list of integers ≥ 0 or 'all'`);
  for (const n of v) {
    if (n !== 'all' && !(typeof n === 'number' && Number.isInteger(n) && n >= 0))
      fail(OP, `${name} must hold integers ≥ 0 or 'all', got ${JSON.stringify(n)}`);
  }
  return sortContexts([...new Set(v as DialogContext[])]);
}

const posInt = (name: string, v: unknown, dflt: number): number => {
  const x = v ?? dflt;
  if (typeof x !== 'number' || !Number.isInteger(x) || x < 1) fail(OP, `${name} must be a positive integer, got ${JSON.stringify(x)}`);
  return x;
};

/** Defaults filled in and every field checked; one-line `FoxgateError` naming the field otherwise. */
export function resolveStudyOptions(o: DialogStudyOptions): ResolvedStudyOptions {
  if (typeof o?.data !== 'string' || o.data === '') fail(OP, 'data must be the DailyDialog folder');
  if (!Array.isArray(o.models) || o.models.length === 0 || !o.models.every((m) => typeof m === 'string' && m !== ''))
    fail(OP, "models must be a non-empty list of model names (e.g. ['transformer', 'foxPro'])");
  if (new Set(o.models).size !== o.models.length) fail(OP, `models lists a model twice: ${o.models.join(', ')}`);
  const trainContexts = checkContexts('trainContexts', o.trainContexts);
  const testContexts = checkContexts('testContexts', o.testContexts);
  const maybe = (name: string, v: unknown) => (v === undefined || v === null ? null : posInt(name, v, 1));
  const buckets = o.buckets ?? DEFAULT_HISTORY_BUCKETS;
  for (const b of buckets) {
    if (!Number.isInteger(b.lo) || b.lo < 0 || (b.hi !== null && (!Number.isInteger(b.hi) || b.hi < b.lo)))
      fail(OP, `buckets: ${JSON.stringify(b)} is not a range {lo, hi} of integers with 0 ≤ lo ≤ hi (hi null: open)`);
  }
  const maxDialogs = maybe('maxDialogs', o.maxDialogs);
  return {
    data: o.data,
    models: [...o.models],
    trainContexts,
    testContexts,
    preset: o.preset ?? 'tiny',
    modelFields: { ...(o.modelFields ?? {}) },
    steps: posInt('steps', o.steps, 300),
    batch: posInt('batch', o.batch, 16),
    context: posInt('context', o.context, 512),
    lr: o.lr ?? 3e-3,
    seed: o.seed ?? 0,
    tokenizer: o.tokenizer ?? 'byte',
    device: o.device ?? 'auto',
    maxDialogs,
    maxTestDialogs: maybe('maxTestDialogs', o.maxTestDialogs) ?? maxDialogs,
    evalBatch: posInt('evalBatch', o.evalBatch, 32),
    checkpointEvery: posInt('checkpointEvery', o.checkpointEvery, 50),
    buckets: buckets.map((b) => ({ lo: b.lo, hi: b.hi })),
  };
}

/** Sort key: numbers ascending, 'all' last. */
export const contextRank = (n: DialogContext): number => (n === 'all' ? Number.POSITIVE_INFINITY : n);

export function sortContexts(ns: DialogContext[]): DialogContext[] {
  return [...ns].sort((a, b) => contextRank(a) - contextRank(b));
}

/** The key of a context in results (`'3'`, `'all'`). */
export const contextKey = (n: DialogContext): string => String(n);

/** A cell's folder name: `<model>-n<N>` (`foxPro-n3`, `transformer-nall`). */
export const cellName = (model: string, n: DialogContext): string => `${model}-n${n}`;

/** `'1'`, `'2–3'`, `'11+'`. */
export function bucketLabel(b: HistoryBucket): string {
  if (b.hi === null) return `${b.lo}+`;
  return b.lo === b.hi ? String(b.lo) : `${b.lo}–${b.hi}`;
}

/** The settings that decide what a cell trains on; a rerun into the same folder must keep them. */
export function trainingSettings(o: ResolvedStudyOptions): Record<string, unknown> {
  return {
    data: o.data,
    preset: o.preset,
    modelFields: o.modelFields,
    steps: o.steps,
    batch: o.batch,
    context: o.context,
    lr: o.lr,
    seed: o.seed,
    tokenizer: o.tokenizer,
    maxDialogs: o.maxDialogs,
    maxTestDialogs: o.maxTestDialogs,
  };
}
