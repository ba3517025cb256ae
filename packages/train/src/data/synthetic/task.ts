/**
 * The shared shape of the synthetic long-context tasks: rows made one at a time from a seeded
 * stream per row index (so a loader's position is just a row counter), targets only at answer
 * positions, accuracy over those positions, and a breakdown by a per-answer group (depth,
 * distance).
 */
import { fail } from '@foxgate/tensor';
import { type Batch, type BatchLoader, checkKeys, checkPositiveInt, emptyBatch, IGNORE_INDEX } from '../batch.js';
import { hashString } from '../fingerprint.js';
import { checkSeed, Rng } from '../random.js';

export type TaskName = 'mqar' | 'needle' | 'dialog';

/** What a row holds besides its tokens: the answer positions and each answer's group. */
export interface RowInfo {
  /** Positions t (within the row) whose target is an answer. */
  answers: number[];
  /** One per answer: key–query distance (mqar), depth (needle), utterance distance (dialog). */
  groups: number[];
}

export interface SyntheticBatch extends Batch {
  /** One per row. */
  rows: RowInfo[];
}

export interface TaskLoaderState {
  kind: 'task';
  task: TaskName;
  seed: number;
  T: number;
  B: number;
  /** Hash of the task's resolved options. */
  options: number;
  /** Rows produced so far. */
  row: number;
}

export interface TaskLoader extends BatchLoader<TaskLoaderState> {
  next(): SyntheticBatch;
}

export interface Accuracy {
  correct: number;
  total: number;
}

export interface SyntheticTask<O = Record<string, unknown>> {
  readonly name: TaskName;
  readonly vocabSize: number;
  readonly T: number;
  readonly B: number;
  /** Expected accuracy of guessing (a uniform or constant guess among the possible answers). */
  readonly chance: number;
  /** What the groups of `accuracyByGroup` are. */
  readonly groupName: 'distance' | 'depth';
  /** The options with every default filled in. */
  readonly options: Readonly<O>;
  describe(): string;
  /** Training batches for a seed, or continuing from a `state()`. */
  batches(seedOrState: number | TaskLoaderState): TaskLoader;
  /** Evaluation batches: `rows` rows (default 256) from an evaluation stream disjoint from training's. */
  evalBatches(opts?: { rows?: number; seed?: number }): Generator<SyntheticBatch>;
  /** Correct answers of `pred` (argmax id per position, [B*T]) over the answer positions. */
  accuracy(pred: Int32Array, batch: Batch): Accuracy;
  /** The same, per group (sorted by group). */
  accuracyByGroup(pred: Int32Array, batch: SyntheticBatch): Map<number, Accuracy>;
  decode(ids: ArrayLike<number>): string;
}

/** What each task module provides. */
export interface TaskDef<O> {
  name: TaskName;
  /** Salt of the row streams (per task). */
  salt: number;
  options: O & { T: number; B: number };
  vocabSize: number;
  chance: number;
  groupName: 'distance' | 'depth';
  /** Token names for `decode`. */
  names: readonly string[];
  pad: number;
  describe: string;
  /** Batches carry `docStarts` (rows holding several independent episodes). */
  docStarts?: boolean;
  /** Writes row `index` into tokens/targets (and docStarts) at `base` (already PAD / IGNORE_INDEX / 0). */
  row(rng: Rng, index: number, evaluation: boolean, tokens: Int32Array, targets: Int32Array, base: number, docStarts?: Uint8Array): RowInfo;
}

const TRAIN_STREAM = 0;
const EVAL_STREAM = 1;

/** The task object of a definition. */
export function makeTask<O>(def: TaskDef<O>): SyntheticTask<O & { T: number; B: number }> {
  const { T, B } = def.options;
  const optionsHash = hashString(JSON.stringify(def.options));
  const makeBatch = (seed: number, stream: number, first: number, rows: number): SyntheticBatch => {
    const batch = emptyBatch(rows, T, def.pad) as SyntheticBatch;
    batch.rows = [];
    if (def.docStarts) batch.docStarts = new Uint8Array(rows * T);
    for (let b = 0; b < rows; b++) {
      const index = first + b;
      const rng = new Rng(seed, def.salt, stream, index);
      batch.rows.push(def.row(rng, index, stream === EVAL_STREAM, batch.tokens, batch.targets, b * T, batch.docStarts));
    }
    return batch;
  };
  const checkPred = (op: string, pred: Int32Array, batch: Batch) => {
    if (!pred || pred.length !== batch.B * batch.T)
      fail(op, `pred has ${pred?.length} values but the batch has B·T = ${batch.B * batch.T} positions`);
  };
  return {
    name: def.name,
    vocabSize: def.vocabSize,
    T,
    B,
    chance: def.chance,
    groupName: def.groupName,
    options: def.options,
    describe: () => def.describe,
    batches(seedOrState: number | TaskLoaderState): TaskLoader {
      const op = `${def.name}.batches`;
      let seed: number;
      let row = 0;
      if (typeof seedOrState === 'object' && seedOrState !== null) {
        const s = seedOrState;
        if (s.kind !== 'task' || s.task !== def.name) fail(op, `state is not a ${def.name} loader state`);
        const want = { T, B, options: optionsHash };
        for (const [k, v] of Object.entries(want)) {
          const got = (s as unknown as Record<string, unknown>)[k];
          if (got !== v)
            fail(
              op,
              `state.${k} is ${JSON.stringify(got)} but this task has ${JSON.stringify(v)}${k === 'options' ? ' (different task options)' : ''}`,
            );
        }
        seed = checkSeed(op, s.seed);
        if (!Number.isSafeInteger(s.row) || s.row < 0) fail(op, `state.row must be an integer ≥ 0, got ${JSON.stringify(s.row)}`);
        row = s.row;
      } else {
        seed = checkSeed(op, seedOrState);
      }
      return {
        next(): SyntheticBatch {
          const batch = makeBatch(seed, TRAIN_STREAM, row, B);
          row += B;
          return batch;
        },
        state: (): TaskLoaderState => ({ kind: 'task', task: def.name, seed, T, B, options: optionsHash, row }),
      };
    },
    *evalBatches(opts: { rows?: number; seed?: number } = {}): Generator<SyntheticBatch> {
      const op = `${def.name}.evalBatches`;
      const rows = checkPositiveInt(op, 'rows', opts.rows ?? 256);
      const seed = checkSeed(op, opts.seed ?? 0);
      for (let first = 0; first < rows; first += B) yield makeBatch(seed, EVAL_STREAM, first, Math.min(B, rows - first));
    },
    accuracy(pred: Int32Array, batch: Batch): Accuracy {
      checkPred(`${def.name}.accuracy`, pred, batch);
      let correct = 0;
      let total = 0;
      for (let i = 0; i < batch.targets.length; i++) {
        if (batch.targets[i] === IGNORE_INDEX) continue;
        total++;
        if (pred[i] === batch.targets[i]) correct++;
      }
      return { correct, total };
    },
    accuracyByGroup(pred: Int32Array, batch: SyntheticBatch): Map<number, Accuracy> {
      const op = `${def.name}.accuracyByGroup`;
      checkPred(op, pred, batch);
      if (!Array.isArray(batch.rows)) fail(op, 'batch has no rows info (use this task’s batches)');
      const acc = new Map<number, Accuracy>();
      batch.rows.forEach((r, b) => {
        r.answers.forEach((t, k) => {
          const g = r.groups[k];
          const a = acc.get(g) ?? { correct: 0, total: 0 };
          a.total++;
          const i = b * batch.T + t;
          if (pred[i] === batch.targets[i]) a.correct++;
          acc.set(g, a);
        });
      });
      return new Map([...acc].sort((x, y) => x[0] - y[0]));
    },
    decode(ids: ArrayLike<number>): string {
      const out: string[] = [];
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i];
        out.push(Number.isInteger(id) && id >= 0 && id < def.names.length ? def.names[id] : `<?${id}>`);
      }
      return out.join(' ');
    },
  };
}

/** Checks a non-negative integer option. */
export function checkNonNegInt(op: string, name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 2 ** 31 - 1)
    fail(op, `${name} must be an integer ≥ 0, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * The integer-option reader of one task: checks the keys of `opts` against `allowed`, then reads
 * an option or its default, failing as `op` with the option's name: `positive` in [1, max],
 * `nonNegative` ≥ 0.
 */
export function taskOptions<O extends object>(op: string, opts: O, allowed: readonly string[]) {
  checkKeys(op, opts, allowed);
  const get = (name: keyof O & string, fallback: number): unknown => (opts as Record<string, unknown>)[name] ?? fallback;
  return {
    positive: (name: keyof O & string, fallback: number, max?: number) => checkPositiveInt(op, name, get(name, fallback), max),
    nonNegative: (name: keyof O & string, fallback: number) => checkNonNegInt(op, name, get(name, fallback)),
  };
}

/** Token names `prefix0, prefix1, …`. */
export function names(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}${i}`);
}
