/**
 * Dialog batching by context: every utterance but the first of a dialog is a target response.
 * Its row is [BOS, context units…, response unit], a unit being [speaker, ≤ maxUtteranceTokens
 * tokens, EOS]; the context is the last N previous utterances (N a number or 'all'); the row is
 * cut from the left to fit T + 1 tokens; loss falls on the response's tokens and its EOS only.
 * One sample per row, padded with PAD (targets IGNORE_INDEX).
 */
import { fail } from '@foxgate/tensor';
import type { Tokenizer } from '../tokenizers/types.js';
import { type Batch, type BatchLoader, checkKeys, checkPositiveInt, emptyBatch } from './batch.js';
import type { Dialog } from './dialogs.js';
import { hashString } from './fingerprint.js';
import { checkSeed, fmix32, permutation } from './random.js';

/** The dialog context-length study's cut: each utterance keeps at most this many tokens (plus its end token). */
export const DEFAULT_MAX_UTTERANCE_TOKENS = 49;

export interface DialogBatchOptions {
  tokenizer: Tokenizer;
  /** Context length: tokens per row. Must be ≥ maxUtteranceTokens + 1 so a whole response fits. */
  T: number;
  B: number;
  /** Seed of the training order (default 0). */
  seed?: number;
  /** Previous utterances given as context: an integer ≥ 0 or 'all' (default 'all'). */
  context?: number | 'all';
  /** Tokens kept per utterance (default 49), before its end token. */
  maxUtteranceTokens?: number;
}

export interface DialogEvalOptions extends Omit<DialogBatchOptions, 'seed'> {
  /** Stop after this many samples (default: all). */
  maxRows?: number;
}

/** What a row holds. */
export interface DialogSample {
  /** Sample index in the dialog list's fixed order (dialog by dialog, turn by turn); the value in `sampleIds`. */
  id: number;
  dialogId: string | number;
  /** Index of the response utterance in its dialog (≥ 1). */
  turnIndex: number;
  /** Previous utterances available (= turnIndex). */
  historyLength: number;
  /** Previous utterances at least partly in the row (after the context limit and the left cut). */
  contextUtterances: number;
  /** True when the left cut removed tokens (BOS included). */
  truncated: boolean;
  /** Positions with loss: the response's tokens and its end token. */
  responseTokens: number;
}

export interface DialogBatch extends Batch {
  sampleIds: Int32Array;
  /** One per row. */
  samples: DialogSample[];
}

export interface DialogLoaderState {
  kind: 'dialog';
  seed: number;
  T: number;
  B: number;
  context: number | 'all';
  maxUtteranceTokens: number;
  /** Fingerprint of the dialogs. */
  corpus: number;
  epoch: number;
  /** Index into this epoch's sample order. */
  index: number;
}

export interface DialogLoader extends BatchLoader<DialogLoaderState> {
  next(): DialogBatch;
  /** Samples per epoch. */
  readonly samples: number;
}

const KEYS = ['tokenizer', 'T', 'B', 'seed', 'context', 'maxUtteranceTokens'];

interface Prepared {
  tok: Tokenizer;
  T: number;
  B: number;
  context: number | 'all';
  maxU: number;
  /** starts[d] = id of dialog d's first sample; starts[n] = total. */
  starts: Int32Array;
  total: number;
}

function prepare(op: string, dialogs: readonly Dialog[], opts: DialogBatchOptions): Prepared {
  if (!Array.isArray(dialogs) || dialogs.length === 0) fail(op, 'dialogs is empty: no data to batch');
  if (!opts || typeof opts.tokenizer?.encode !== 'function') fail(op, 'tokenizer is missing (pass createTokenizer(spec))');
  const tok = opts.tokenizer;
  const T = checkPositiveInt(op, 'T', opts.T);
  const B = checkPositiveInt(op, 'B', opts.B);
  const maxU = checkPositiveInt(op, 'maxUtteranceTokens', opts.maxUtteranceTokens ?? DEFAULT_MAX_UTTERANCE_TOKENS);
  const context = opts.context ?? 'all';
  if (context !== 'all' && !(typeof context === 'number' && Number.isInteger(context) && context >= 0)) {
    fail(op, `context must be an integer ≥ 0 or 'all', got ${JSON.stringify(context)}`);
  }
  if (T < maxU + 1) {
    fail(op, `T = ${T} cannot hold a whole response (speaker + up to maxUtteranceTokens = ${maxU} tokens + end); use T ≥ ${maxU + 1}`);
  }
  const starts = new Int32Array(dialogs.length + 1);
  for (let d = 0; d < dialogs.length; d++) {
    const turns = dialogs[d]?.turns;
    if (!Array.isArray(turns)) fail(op, `dialogs[${d}] has no turns array`);
    const sp = dialogs[d].speakers;
    if (sp !== undefined) {
      if (sp.length !== turns.length) fail(op, `dialog ${dialogs[d].id}: ${sp.length} speakers for ${turns.length} turns`);
      for (const s of sp) {
        if (!Number.isInteger(s) || s < 0 || s >= tok.speakers.length) {
          fail(op, `dialog ${dialogs[d].id}: speaker ${s} but the tokenizer has ${tok.speakers.length} speaker tokens (spec speakers)`);
        }
      }
    }
    starts[d + 1] = starts[d] + Math.max(0, turns.length - 1);
  }
  const total = starts[dialogs.length];
  if (total === 0) fail(op, 'no dialog has two or more utterances: nothing to predict');
  return { tok, T, B, context, maxU, starts, total };
}

/** Dialog index of sample `id` (binary search in starts). */
function dialogOf(starts: Int32Array, id: number): number {
  let lo = 0;
  let hi = starts.length - 2;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid] <= id) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * The token sequence of the response `turn` of `dialog` (at most T + 1 tokens: the row's tokens
 * and the last target) and where its response unit starts (its speaker token).
 */
export function dialogSequence(
  dialog: Dialog,
  turn: number,
  opts: { tokenizer: Tokenizer; T: number; context?: number | 'all'; maxUtteranceTokens?: number },
): { seq: number[]; responseStart: number; contextUtterances: number; truncated: boolean } {
  const tok = opts.tokenizer;
  const maxU = opts.maxUtteranceTokens ?? DEFAULT_MAX_UTTERANCE_TOKENS;
  const ctx = opts.context ?? 'all';
  const first = ctx === 'all' ? 0 : Math.max(0, turn - ctx);
  const full: number[] = [tok.bos];
  const unitEnds: number[] = [];
  let responseStart = 0;
  for (let j = first; j <= turn; j++) {
    if (j === turn) responseStart = full.length;
    full.push(tok.speakers[dialog.speakers?.[j] ?? j % 2]);
    const ids = tok.encode(dialog.turns[j]);
    for (let k = 0; k < Math.min(maxU, ids.length); k++) full.push(ids[k]);
    full.push(tok.eos);
    if (j < turn) unitEnds.push(full.length);
  }
  const cut = Math.max(0, full.length - (opts.T + 1));
  return {
    seq: cut > 0 ? full.slice(cut) : full,
    responseStart: responseStart - cut,
    contextUtterances: unitEnds.filter((e) => e > cut).length,
    truncated: cut > 0,
  };
}

function fillRow(p: Prepared, dialogs: readonly Dialog[], id: number, batch: DialogBatch, b: number): void {
  const d = dialogOf(p.starts, id);
  const turn = id - p.starts[d] + 1;
  const { seq, responseStart, contextUtterances, truncated } = dialogSequence(dialogs[d], turn, {
    tokenizer: p.tok,
    T: p.T,
    context: p.context,
    maxUtteranceTokens: p.maxU,
  });
  const base = b * p.T;
  for (let t = 0; t + 1 < seq.length; t++) {
    batch.tokens[base + t] = seq[t];
    if (t >= responseStart) {
      batch.targets[base + t] = seq[t + 1];
      batch.sampleIds[base + t] = id;
    }
  }
  batch.samples.push({
    id,
    dialogId: dialogs[d].id,
    turnIndex: turn,
    historyLength: turn,
    contextUtterances,
    truncated,
    responseTokens: seq.length - 1 - responseStart,
  });
}

function newBatch(p: Prepared, rows: number): DialogBatch {
  const b = emptyBatch(rows, p.T, p.tok.pad) as DialogBatch;
  b.sampleIds = new Int32Array(rows * p.T).fill(-1);
  b.samples = [];
  return b;
}

function dialogsFingerprint(dialogs: readonly Dialog[]): number {
  let h = fmix32(dialogs.length + 3);
  for (const d of dialogs) {
    h = hashString(String(d.id), fmix32(h ^ 5));
    for (const t of d.turns) h = hashString(t, fmix32(h ^ 11));
    if (d.speakers) for (const s of d.speakers) h = fmix32(h ^ (s + 13));
  }
  return h;
}

/** Number of samples (responses) of a dialog list. */
export function countDialogSamples(dialogs: readonly Dialog[]): number {
  let n = 0;
  for (const d of dialogs) n += Math.max(0, d.turns.length - 1);
  return n;
}

/**
 * A training loader: all samples in a seeded order per epoch, B per batch. Pass a `state()` taken
 * earlier to continue with exactly the batch that would have come next.
 */
export function dialogBatches(dialogs: readonly Dialog[], opts: DialogBatchOptions, state?: DialogLoaderState): DialogLoader {
  const op = 'dialogBatches';
  checkKeys(op, opts ?? {}, KEYS);
  const p = prepare(op, dialogs, opts);
  const seed = checkSeed(op, opts.seed ?? 0);
  const corpus = dialogsFingerprint(dialogs);
  let epoch = 0;
  let index = 0;
  if (state !== undefined) {
    if (state === null || typeof state !== 'object' || state.kind !== 'dialog') fail(op, 'state is not a dialog loader state');
    const want = { seed, T: p.T, B: p.B, context: p.context, maxUtteranceTokens: p.maxU, corpus };
    for (const [k, v] of Object.entries(want)) {
      const got = (state as unknown as Record<string, unknown>)[k];
      if (got !== v)
        fail(
          op,
          `state.${k} is ${JSON.stringify(got)} but this loader has ${JSON.stringify(v)}${k === 'corpus' ? ' (different dialogs)' : ''}`,
        );
    }
    if (
      !Number.isSafeInteger(state.epoch) ||
      state.epoch < 0 ||
      !Number.isInteger(state.index) ||
      state.index < 0 ||
      state.index >= p.total
    ) {
      fail(op, `state position ${JSON.stringify({ epoch: state.epoch, index: state.index })} is out of range for ${p.total} samples`);
    }
    ({ epoch, index } = state);
  }
  let order = permutation(p.total, seed, epoch);
  return {
    samples: p.total,
    next(): DialogBatch {
      const batch = newBatch(p, p.B);
      for (let b = 0; b < p.B; b++) {
        fillRow(p, dialogs, order[index], batch, b);
        if (++index === p.total) {
          index = 0;
          epoch++;
          order = permutation(p.total, seed, epoch);
        }
      }
      return batch;
    },
    state(): DialogLoaderState {
      return { kind: 'dialog', seed, T: p.T, B: p.B, context: p.context, maxUtteranceTokens: p.maxU, corpus, epoch, index };
    },
  };
}

/** Evaluation batches: every sample once in fixed order (dialog by dialog, turn by turn); the last batch may be short. */
export function* dialogEvalBatches(dialogs: readonly Dialog[], opts: DialogEvalOptions): Generator<DialogBatch> {
  const op = 'dialogEvalBatches';
  checkKeys(op, opts ?? {}, [...KEYS.filter((k) => k !== 'seed'), 'maxRows']);
  const p = prepare(op, dialogs, opts as DialogBatchOptions);
  const rows = opts.maxRows === undefined ? p.total : Math.min(p.total, checkPositiveInt(op, 'maxRows', opts.maxRows));
  for (let s = 0; s < rows; s += p.B) {
    const n = Math.min(p.B, rows - s);
    const batch = newBatch(p, n);
    for (let b = 0; b < n; b++) fillRow(p, dialogs, s + b, batch, b);
    yield batch;
  }
}
