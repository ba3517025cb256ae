/**
 * Language-modelling batches: documents (each tokenized as [BOS, …text]) are packed into rows of
 * exactly T tokens (T + 1 with the shifted targets; row r+1 starts at the last token of row r's
 * window, so every token is predicted once). Documents stream one at a time in a seeded order
 * per epoch; the loader's position is { epoch, doc, offset }.
 */
import { fail } from '@foxgate/tensor';
import type { Tokenizer } from '../tokenizers/types.js';
import { type Batch, type BatchLoader, checkKeys, checkPositiveInt, emptyBatch } from './batch.js';
import { documentsFingerprint } from './fingerprint.js';
import { checkSeed, permutation } from './random.js';
import { readDocument, type TextDocument } from './text.js';

/** A document: its text, or a document of a text corpus (read from disk when reached). */
export type LmDocument = string | TextDocument;

export interface LmBatchOptions {
  tokenizer: Tokenizer;
  /** Context length: tokens per row. */
  T: number;
  /** Rows per batch. */
  B: number;
  /** Seed of the document order (default 0). */
  seed?: number;
  /** Shuffle the documents anew each epoch (default true); false keeps their given order. */
  shuffle?: boolean;
  /** Fill `docStarts` (default false). */
  docStarts?: boolean;
  /**
   * true (default): documents are concatenated and cut into rows that may span documents.
   * false: every row lies inside one document (windows of T + 1 tokens at offsets 0, T, 2T, …;
   * the rest of a document and documents shorter than T + 1 tokens are dropped).
   */
  packing?: boolean;
}

export interface LmEvalOptions extends Omit<LmBatchOptions, 'seed' | 'shuffle'> {
  /** Stop after this many rows (default: the whole split). */
  maxRows?: number;
}

/** Position of an LM loader: JSON, resumable. */
export interface LmLoaderState {
  kind: 'lm';
  seed: number;
  T: number;
  B: number;
  packing: boolean;
  shuffle: boolean;
  /** Fingerprint of the document list (a resumed loader must see the same documents). */
  corpus: number;
  epoch: number;
  /** Index into this epoch's document order. */
  doc: number;
  /** Token offset in that document's [BOS, …tokens]. */
  offset: number;
}

export interface LmLoader extends BatchLoader<LmLoaderState> {
  readonly T: number;
  readonly B: number;
}

const LM_KEYS = ['tokenizer', 'T', 'B', 'seed', 'shuffle', 'docStarts', 'packing'];

function tokenizeDoc(tok: Tokenizer, doc: LmDocument): Int32Array {
  const ids = tok.encode(readDocument(doc));
  const seq = new Int32Array(ids.length + 1);
  seq[0] = tok.bos;
  seq.set(ids, 1);
  return seq;
}

function checkCommon(op: string, docs: readonly LmDocument[], opts: LmBatchOptions) {
  if (!Array.isArray(docs) || docs.length === 0) fail(op, 'documents is empty: no data to batch');
  if (!opts || typeof opts.tokenizer?.encode !== 'function') fail(op, 'tokenizer is missing (pass createTokenizer(spec))');
  const T = checkPositiveInt(op, 'T', opts.T);
  const B = checkPositiveInt(op, 'B', opts.B);
  const packing = opts.packing ?? true;
  const docStarts = opts.docStarts ?? false;
  if (typeof packing !== 'boolean') fail(op, `packing must be a boolean, got ${JSON.stringify(packing)}`);
  if (typeof docStarts !== 'boolean') fail(op, `docStarts must be a boolean, got ${JSON.stringify(docStarts)}`);
  return { T, B, packing, docStarts, tok: opts.tokenizer };
}

function noWindowError(op: string, T: number, longest: number): never {
  fail(
    op,
    `context T = ${T} needs documents of at least ${T + 1} tokens with packing off, but the longest has ${longest}; use packing or a shorter T`,
  );
}

/**
 * A training loader over `docs`, deterministic given (seed, T, B) and the documents. Pass a
 * `state()` taken earlier to continue with exactly the batch that would have come next.
 */
export function lmBatches(docs: readonly LmDocument[], opts: LmBatchOptions, state?: LmLoaderState): LmLoader {
  const op = 'lmBatches';
  checkKeys(op, opts ?? {}, LM_KEYS);
  const { T, B, packing, docStarts, tok } = checkCommon(op, docs, opts);
  const seed = checkSeed(op, opts.seed ?? 0);
  const shuffle = opts.shuffle ?? true;
  if (typeof shuffle !== 'boolean') fail(op, `shuffle must be a boolean, got ${JSON.stringify(shuffle)}`);
  const n = docs.length;
  const orderOf = (e: number) => (shuffle ? permutation(n, seed, e) : Int32Array.from({ length: n }, (_, i) => i));
  const corpus = documentsFingerprint(docs);
  let epoch = 0;
  let doc = 0;
  let offset = 0;
  if (state !== undefined) {
    if (state === null || typeof state !== 'object' || state.kind !== 'lm') fail(op, 'state is not an LM loader state');
    const want = { seed, T, B, packing, shuffle, corpus };
    for (const [k, v] of Object.entries(want)) {
      const got = (state as unknown as Record<string, unknown>)[k];
      if (got !== v)
        fail(
          op,
          `state.${k} is ${JSON.stringify(got)} but this loader has ${JSON.stringify(v)}${k === 'corpus' ? ' (different documents)' : ''}`,
        );
    }
    const ok = (v: unknown, hi: number) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= hi;
    if (!ok(state.epoch, Number.MAX_SAFE_INTEGER) || !ok(state.doc, n - 1) || !ok(state.offset, Number.MAX_SAFE_INTEGER)) {
      fail(
        op,
        `state position ${JSON.stringify({ epoch: state.epoch, doc: state.doc, offset: state.offset })} is out of range for ${n} documents`,
      );
    }
    ({ epoch, doc, offset } = state);
  }

  let order = orderOf(epoch);
  let seqDoc = -1;
  let seqEpoch = -1;
  let seq: Int32Array = new Int32Array(0);
  const current = (): Int32Array => {
    if (seqDoc !== doc || seqEpoch !== epoch) {
      seq = tokenizeDoc(tok, docs[order[doc]]);
      seqDoc = doc;
      seqEpoch = epoch;
    }
    return seq;
  };
  const advanceDoc = () => {
    offset = 0;
    doc++;
    if (doc === n) {
      doc = 0;
      epoch++;
      order = orderOf(epoch);
    }
  };
  if (state !== undefined && offset > current().length)
    fail(op, `state.offset ${offset} is past the end of document ${doc} (${seq.length} tokens)`);

  /** Packed: copy T + 1 stream tokens into row b, advancing the cursor by T. */
  const fillPacked = (batch: Batch, b: number) => {
    const base = b * T;
    for (let t = 0; t <= T; t++) {
      let s = current();
      while (offset >= s.length) {
        advanceDoc();
        s = current();
      }
      const id = s[offset];
      if (t < T) {
        batch.tokens[base + t] = id;
        if (batch.docStarts && offset === 0) batch.docStarts[base + t] = 1;
        offset++;
      }
      if (t > 0) batch.targets[base + t - 1] = id;
    }
  };

  /** Unpacked: the next window of T + 1 tokens that lies inside one document. */
  const fillWindow = (batch: Batch, b: number) => {
    let scanned = 0;
    let longest = 0;
    for (;;) {
      const s = current();
      if (offset + T + 1 <= s.length) break;
      longest = Math.max(longest, s.length);
      if (offset === 0 && ++scanned >= n) noWindowError(op, T, longest);
      if (offset > 0) scanned = 0;
      advanceDoc();
    }
    const s = current();
    const base = b * T;
    batch.tokens.set(s.subarray(offset, offset + T), base);
    batch.targets.set(s.subarray(offset + 1, offset + T + 1), base);
    if (batch.docStarts && offset === 0) batch.docStarts[base] = 1;
    offset += T;
  };

  return {
    T,
    B,
    next(): Batch {
      const batch = emptyBatch(B, T, tok.pad);
      if (docStarts) batch.docStarts = new Uint8Array(B * T);
      for (let b = 0; b < B; b++) (packing ? fillPacked : fillWindow)(batch, b);
      return batch;
    },
    state(): LmLoaderState {
      return { kind: 'lm', seed, T, B, packing, shuffle, corpus, epoch, doc, offset };
    },
  };
}

/**
 * Evaluation batches over `docs` in their given order, covering them once: packed rows (the last
 * one padded with PAD, its missing targets IGNORE_INDEX) or, with packing off, the windows that
 * lie inside one document. The last batch may have fewer than B rows (its `B` says how many).
 */
export function* lmEvalBatches(docs: readonly LmDocument[], opts: LmEvalOptions): Generator<Batch> {
  const op = 'lmEvalBatches';
  checkKeys(op, opts ?? {}, [...LM_KEYS.filter((k) => k !== 'seed' && k !== 'shuffle'), 'maxRows']);
  const { T, B, packing, docStarts, tok } = checkCommon(op, docs, opts as LmBatchOptions);
  const maxRows = opts.maxRows === undefined ? Number.POSITIVE_INFINITY : checkPositiveInt(op, 'maxRows', opts.maxRows);
  let rows: { tokens: Int32Array; starts: Uint8Array | null }[] = [];
  let emitted = 0;
  const flush = (): Batch => {
    const batch = emptyBatch(rows.length, T, tok.pad);
    if (docStarts) batch.docStarts = new Uint8Array(rows.length * T);
    rows.forEach((r, b) => {
      batch.tokens.set(r.tokens.subarray(0, Math.min(T, r.tokens.length)), b * T);
      batch.targets.set(r.tokens.subarray(1), b * T);
      if (batch.docStarts && r.starts) batch.docStarts.set(r.starts.subarray(0, Math.min(T, r.tokens.length)), b * T);
    });
    rows = [];
    return batch;
  };
  if (packing) {
    let row = new Int32Array(T + 1);
    let starts = new Uint8Array(T + 1);
    let fill = 0;
    for (const d of docs) {
      const s = tokenizeDoc(tok, d);
      for (let o = 0; o < s.length; o++) {
        row[fill] = s[o];
        starts[fill] = o === 0 ? 1 : 0;
        if (++fill < T + 1) continue;
        rows.push({ tokens: row, starts });
        if (++emitted >= maxRows) {
          yield flush();
          return;
        }
        if (rows.length === B) yield flush();
        const [lastId, lastStart] = [row[T], starts[T]];
        row = new Int32Array(T + 1);
        starts = new Uint8Array(T + 1);
        row[0] = lastId;
        starts[0] = lastStart;
        fill = 1;
      }
    }
    if (fill >= 2) rows.push({ tokens: row.subarray(0, fill), starts });
  } else {
    let longest = 0;
    for (const d of docs) {
      const s = tokenizeDoc(tok, d);
      longest = Math.max(longest, s.length);
      for (let o = 0; o + T + 1 <= s.length; o += T) {
        rows.push({ tokens: s.subarray(o, o + T + 1), starts: o === 0 ? Uint8Array.of(1) : null });
        emitted++;
        if (emitted >= maxRows) {
          yield flush();
          return;
        }
        if (rows.length === B) yield flush();
      }
    }
    if (emitted === 0) noWindowError(op, T, longest);
  }
  if (rows.length > 0) yield flush();
}
