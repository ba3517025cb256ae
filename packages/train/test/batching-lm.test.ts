import { FoxgateError } from '@foxgate/tensor';
import { describe, expect, it } from 'vitest';
import {
  type Batch,
  createTokenizer,
  IGNORE_INDEX,
  type LmLoaderState,
  lmBatches,
  lmEvalBatches,
  openTextCorpus,
  readDocument,
  splitDocuments,
} from '../src/index.js';
import { sharedData } from './data-shared.js';

const tok = createTokenizer({ kind: 'byte' });
const BOS = 256;
const PAD = 258;
const I = IGNORE_INDEX;
const rows = (b: Batch, key: 'tokens' | 'targets' | 'docStarts') =>
  Array.from({ length: b.B }, (_, r) => Array.from(b[key]!.subarray(r * b.T, (r + 1) * b.T)));
const [a, b_, c, d, e, f, g] = [97, 98, 99, 100, 101, 102, 103];

describe('lmBatches packing (byte tokens, documents in order)', () => {
  const docs = ['ab', 'cde', 'f'];
  // stream: BOS a b BOS c d e BOS f | BOS a b …

  it('rows of exactly T tokens, aligned targets, docStarts only where a document starts', () => {
    const L = lmBatches(docs, { tokenizer: tok, T: 4, B: 2, shuffle: false, docStarts: true });
    const x = L.next();
    expect([x.B, x.T]).toEqual([2, 4]);
    expect(rows(x, 'tokens')).toEqual([
      [BOS, a, b_, BOS],
      [c, d, e, BOS],
    ]);
    expect(rows(x, 'targets')).toEqual([
      [a, b_, BOS, c],
      [d, e, BOS, f],
    ]);
    expect(rows(x, 'docStarts')).toEqual([
      [1, 0, 0, 1],
      [0, 0, 0, 1],
    ]);
    expect(x.sampleIds).toBeUndefined();
    const y = L.next();
    // wraps into the next epoch: f then the documents again
    expect(rows(y, 'tokens')).toEqual([
      [f, BOS, a, b_],
      [BOS, c, d, e],
    ]);
    expect(rows(y, 'targets')).toEqual([
      [BOS, a, b_, BOS],
      [c, d, e, BOS],
    ]);
    expect(rows(y, 'docStarts')).toEqual([
      [0, 1, 0, 0],
      [1, 0, 0, 0],
    ]);
    expect(L.state()).toMatchObject({ kind: 'lm', epoch: 1, doc: 2, offset: 0 }); // next: the BOS of 'f'
  });

  it('docStarts is absent unless asked for', () => {
    expect(lmBatches(docs, { tokenizer: tok, T: 4, B: 1 }).next().docStarts).toBeUndefined();
  });

  it('shuffles whole documents per epoch, deterministically per seed', () => {
    const many = ['a', 'bb', 'ccc', 'dddd', 'eeeee', 'ffffff'];
    const epochLen = many.reduce((n, s) => n + s.length + 1, 0); // 27
    const streamOf = (seed: number) => {
      const L = lmBatches(many, { tokenizer: tok, T: 9, B: 3, seed });
      const out: number[] = [];
      for (let i = 0; i < 4; i++) for (const r of rows(L.next(), 'tokens')) out.push(...r);
      return out; // 4 batches · 27 tokens = 4 epochs
    };
    const s0 = streamOf(0);
    expect(s0).toEqual(streamOf(0));
    const orders: string[] = [];
    for (let ep = 0; ep < 4; ep++) {
      const chunk = s0.slice(ep * epochLen, (ep + 1) * epochLen);
      expect(chunk[0]).toBe(BOS);
      const texts = tok.decode(chunk).split('<bos>').slice(1);
      expect([...texts].sort()).toEqual(many);
      orders.push(texts.join(','));
    }
    expect(new Set(orders).size).toBeGreaterThan(1);
    expect(streamOf(1)).not.toEqual(s0);
  });

  it('state() resumes with exactly the next batches (through JSON), also across epochs', () => {
    const many = ['alpha beta', 'gamma', 'delta epsilon zeta', 'eta', 'theta iota kappa lambda'];
    const opts = { tokenizer: tok, T: 7, B: 3, seed: 42, docStarts: true };
    const L = lmBatches(many, opts);
    for (let i = 0; i < 5; i++) L.next();
    const saved = JSON.parse(JSON.stringify(L.state())) as LmLoaderState;
    const want = Array.from({ length: 8 }, () => L.next());
    const R = lmBatches(many, opts, saved);
    expect(R.state()).toEqual(saved);
    const got = Array.from({ length: 8 }, () => R.next());
    expect(got).toEqual(want);
    expect(R.state()).toEqual(L.state());
  });

  it('rejects a state from another loader or corpus', () => {
    const L = lmBatches(docs, { tokenizer: tok, T: 4, B: 2 });
    L.next();
    const s = L.state();
    expect(() => lmBatches(docs, { tokenizer: tok, T: 5, B: 2 }, s)).toThrow('lmBatches: state.T is 4 but this loader has 5');
    expect(() => lmBatches(['ab', 'cdX', 'f'], { tokenizer: tok, T: 4, B: 2 }, s)).toThrow(
      /lmBatches: state.corpus is \d+ but this loader has \d+ \(different documents\)/,
    );
    expect(() => lmBatches(docs, { tokenizer: tok, T: 4, B: 2 }, { ...s, doc: 3 })).toThrow(
      'lmBatches: state position {"epoch":0,"doc":3,"offset":',
    );
    expect(() => lmBatches(docs, { tokenizer: tok, T: 4, B: 2 }, { kind: 'dialog' } as never)).toThrow(
      'lmBatches: state is not an LM loader state',
    );
  });
});

describe('lmBatches without packing', () => {
  const docs = ['ab', 'cde', 'f'];

  it('every row lies inside one document: windows of T+1 at stride T, short documents skipped', () => {
    const L = lmBatches(docs, { tokenizer: tok, T: 2, B: 3, shuffle: false, packing: false, docStarts: true });
    const x = L.next();
    // 'ab' → [BOS a b]: one window; 'cde' → [BOS c d e]: one window (the next would need 5); 'f' too short
    expect(rows(x, 'tokens')).toEqual([
      [BOS, a],
      [BOS, c],
      [BOS, a],
    ]);
    expect(rows(x, 'targets')).toEqual([
      [a, b_],
      [c, d],
      [a, b_],
    ]);
    expect(rows(x, 'docStarts')).toEqual([
      [1, 0],
      [1, 0],
      [1, 0],
    ]);
    const long = lmBatches(['abcdefg'], { tokenizer: tok, T: 3, B: 2, packing: false, docStarts: true }).next();
    // [BOS a b c d e f g]: windows at 0 and 3
    expect(rows(long, 'tokens')).toEqual([
      [BOS, a, b_],
      [c, d, e],
    ]);
    expect(rows(long, 'targets')).toEqual([
      [a, b_, c],
      [d, e, f],
    ]);
    expect(rows(long, 'docStarts')).toEqual([
      [1, 0, 0],
      [0, 0, 0],
    ]);
  });

  it('a context longer than every document is an error', () => {
    const L = lmBatches(docs, { tokenizer: tok, T: 4, B: 1, packing: false });
    expect(() => L.next()).toThrow(FoxgateError);
    expect(() => lmBatches(docs, { tokenizer: tok, T: 4, B: 1, packing: false }).next()).toThrow(
      'lmBatches: context T = 4 needs documents of at least 5 tokens with packing off, but the longest has 4; use packing or a shorter T',
    );
    expect(() => [...lmEvalBatches(docs, { tokenizer: tok, T: 4, B: 1, packing: false })]).toThrow(
      'lmEvalBatches: context T = 4 needs documents of at least 5 tokens with packing off, but the longest has 4',
    );
  });
});

describe('lmEvalBatches', () => {
  const docs = ['ab', 'cde', 'fg'];
  // stream: BOS a b BOS c d e BOS f g (10 tokens)

  it('covers the documents once in order; the last row is padded, the last batch short', () => {
    const out = [...lmEvalBatches(docs, { tokenizer: tok, T: 4, B: 2, docStarts: true })];
    expect(out.map((x) => x.B)).toEqual([2, 1]);
    expect(rows(out[0], 'tokens')).toEqual([
      [BOS, a, b_, BOS],
      [c, d, e, BOS],
    ]);
    expect(rows(out[0], 'targets')).toEqual([
      [a, b_, BOS, c],
      [d, e, BOS, f],
    ]);
    expect(rows(out[0], 'docStarts')).toEqual([
      [1, 0, 0, 1],
      [0, 0, 0, 1],
    ]);
    expect(rows(out[1], 'tokens')).toEqual([[f, g, PAD, PAD]]);
    expect(rows(out[1], 'targets')).toEqual([[g, I, I, I]]);
    expect(rows(out[1], 'docStarts')).toEqual([[0, 0, 0, 0]]);
    // every stream token after the first is a target exactly once
    const targets = out.flatMap((x) => Array.from(x.targets)).filter((t) => t !== I);
    expect(targets.length).toBe(9);
  });

  it('maxRows caps the rows; packing off gives whole windows only', () => {
    const capped = [...lmEvalBatches(docs, { tokenizer: tok, T: 4, B: 2, maxRows: 1 })];
    expect(capped.map((x) => x.B)).toEqual([1]);
    const win = [...lmEvalBatches(['abcdefg', 'xy'], { tokenizer: tok, T: 3, B: 5, packing: false })];
    expect(rows(win[0], 'tokens')).toEqual([
      [BOS, a, b_],
      [c, d, e],
    ]);
  });

  it('is the same on a second pass', () => {
    const o = { tokenizer: tok, T: 3, B: 2 };
    expect([...lmEvalBatches(docs, o)]).toEqual([...lmEvalBatches(docs, o)]);
  });
});

describe('on real corpora', () => {
  it('Tiny Shakespeare segments: training rows are windows of the real text; validation is held out', () => {
    const corpus = openTextCorpus(sharedData('tinyshakespeare/input.txt'));
    const split = splitDocuments(corpus.documents, { seed: 0 });
    const trainText = split.train.map(readDocument);
    const L = lmBatches(split.train, { tokenizer: tok, T: 64, B: 4, seed: 1, docStarts: true });
    for (let i = 0; i < 3; i++) {
      const x = L.next();
      for (let r = 0; r < x.B; r++) {
        const toks = Array.from(x.tokens.subarray(r * 64, (r + 1) * 64));
        const tg = Array.from(x.targets.subarray(r * 64, (r + 1) * 64));
        expect(tg.slice(0, -1)).toEqual(toks.slice(1));
        const pieces = tok
          .decode(toks)
          .split('<bos>')
          .filter((p) => p.length > 8);
        for (const p of pieces) expect(trainText.some((t) => t.includes(p))).toBe(true);
      }
    }
    const valRows = [...lmEvalBatches(split.validation, { tokenizer: tok, T: 256, B: 8 })].reduce((n, x) => n + x.B, 0);
    const valBytes = split.validation.reduce((n, d) => n + d.end - d.start + 1, 0);
    expect(valRows).toBe(Math.ceil((valBytes - 1) / 256));
  });

  it('gpt2 tokens pack the same way', () => {
    const gpt2 = createTokenizer({ kind: 'gpt2' });
    const corpus = openTextCorpus(sharedData('tinyshakespeare/input.txt'));
    const x = lmBatches(corpus.documents.slice(0, 2), { tokenizer: gpt2, T: 32, B: 2, shuffle: false }).next();
    expect(x.tokens[0]).toBe(gpt2.bos);
    expect(gpt2.decode(x.tokens.subarray(1, 32))).toBe(gpt2.decode(gpt2.encode(readDocument(corpus.documents[0])).slice(0, 31)));
  });
});

describe('lmBatches errors', () => {
  it('name the option and what is wrong', () => {
    expect(() => lmBatches([], { tokenizer: tok, T: 4, B: 1 })).toThrow('lmBatches: documents is empty: no data to batch');
    expect(() => lmBatches(['a'], { tokenizer: tok, T: 0, B: 1 })).toThrow('lmBatches: T must be an integer in [1, 2147483647], got 0');
    expect(() => lmBatches(['a'], { tokenizer: tok, T: 4, B: 1.5 })).toThrow('lmBatches: B must be an integer');
    expect(() => lmBatches(['a'], { T: 4, B: 1 } as never)).toThrow('lmBatches: tokenizer is missing (pass createTokenizer(spec))');
    expect(() => lmBatches(['a'], { tokenizer: tok, T: 4, B: 1, context: 3 } as never)).toThrow('lmBatches: unknown option "context"');
    expect(() => lmEvalBatches([], { tokenizer: tok, T: 4, B: 1 }).next()).toThrow('lmEvalBatches: documents is empty: no data to batch');
  });
});
