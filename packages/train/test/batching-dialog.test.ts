import { describe, expect, it } from 'vitest';
import {
  countDialogSamples,
  createTokenizer,
  type Dialog,
  type DialogBatch,
  type DialogLoaderState,
  dialogBatches,
  dialogEvalBatches,
  IGNORE_INDEX,
  loadDailyDialog,
} from '../src/index.js';
import { sharedData } from './data-shared.js';

const tok = createTokenizer({ kind: 'byte' });
const [BOS, EOS, PAD, A, B] = [256, 257, 258, 259, 260];
const I = IGNORE_INDEX;
const ch = (s: string) => [...Buffer.from(s)];
const row = (x: DialogBatch, key: 'tokens' | 'targets' | 'sampleIds', r = 0) => Array.from(x[key].subarray(r * x.T, (r + 1) * x.T));
const padTo = (a: number[], n: number, v: number) => [...a, ...Array(n - a.length).fill(v)];

const dialogs: Dialog[] = [
  { id: 'd0', turns: ['hi', 'yo', 'ok'] },
  { id: 'd1', turns: ['alone'] },
  { id: 'd2', turns: ['ab', 'cd'], speakers: [1, 0] },
];
const evalAll = (opts: Partial<Parameters<typeof dialogEvalBatches>[1]> = {}) =>
  [...dialogEvalBatches(dialogs, { tokenizer: tok, T: 16, B: 8, maxUtteranceTokens: 3, ...opts })][0];

describe('dialog rows (byte tokens, by hand)', () => {
  it('context all: [BOS, <spk> utt EOS …]; loss on the response tokens and its end only', () => {
    const x = evalAll();
    expect(x.B).toBe(3); // d0: 2 responses, d1: none, d2: 1
    // sample 0: response 'yo' after 'hi'
    expect(row(x, 'tokens', 0)).toEqual(padTo([BOS, A, ...ch('hi'), EOS, B, ...ch('yo')], 16, PAD));
    expect(row(x, 'targets', 0)).toEqual(padTo([I, I, I, I, I, ...ch('yo'), EOS], 16, I));
    expect(row(x, 'sampleIds', 0)).toEqual(padTo([-1, -1, -1, -1, -1, 0, 0, 0], 16, -1));
    // sample 1: response 'ok' after 'hi', 'yo'
    expect(row(x, 'tokens', 1)).toEqual(padTo([BOS, A, ...ch('hi'), EOS, B, ...ch('yo'), EOS, A, ...ch('ok')], 16, PAD));
    expect(row(x, 'targets', 1)).toEqual(padTo([I, I, I, I, I, I, I, I, I, ...ch('ok'), EOS], 16, I));
    expect(row(x, 'sampleIds', 1)).toEqual(padTo([-1, -1, -1, -1, -1, -1, -1, -1, -1, 1, 1, 1], 16, -1));
    // sample 2: given speakers B, A
    expect(row(x, 'tokens', 2)).toEqual(padTo([BOS, B, ...ch('ab'), EOS, A, ...ch('cd')], 16, PAD));
    expect(x.samples).toEqual([
      { id: 0, dialogId: 'd0', turnIndex: 1, historyLength: 1, contextUtterances: 1, truncated: false, responseTokens: 3 },
      { id: 1, dialogId: 'd0', turnIndex: 2, historyLength: 2, contextUtterances: 2, truncated: false, responseTokens: 3 },
      { id: 2, dialogId: 'd2', turnIndex: 1, historyLength: 1, contextUtterances: 1, truncated: false, responseTokens: 3 },
    ]);
    expect(countDialogSamples(dialogs)).toBe(3);
  });

  it('context N keeps the last N previous utterances (0: the response alone)', () => {
    const one = evalAll({ context: 1 });
    expect(row(one, 'tokens', 1)).toEqual(padTo([BOS, B, ...ch('yo'), EOS, A, ...ch('ok')], 16, PAD));
    expect(row(one, 'targets', 1)).toEqual(padTo([I, I, I, I, I, ...ch('ok'), EOS], 16, I));
    expect(one.samples[1]).toMatchObject({ historyLength: 2, contextUtterances: 1, truncated: false });
    const none = evalAll({ context: 0 });
    expect(row(none, 'tokens', 1)).toEqual(padTo([BOS, A, ...ch('ok')], 16, PAD));
    expect(row(none, 'targets', 1)).toEqual(padTo([I, ...ch('ok'), EOS], 16, I));
    expect(none.samples[1]).toMatchObject({ historyLength: 2, contextUtterances: 0 });
  });

  it('truncates from the left to fit T + 1 tokens', () => {
    // full: BOS A h i EOS B y o EOS A o k EOS (13) → T = 6 keeps the last 7
    const x = evalAll({ T: 6 });
    expect(row(x, 'tokens', 1)).toEqual([...ch('yo'), EOS, A, ...ch('ok')]);
    expect(row(x, 'targets', 1)).toEqual([I, I, I, ...ch('ok'), EOS]);
    expect(x.samples[1]).toMatchObject({ contextUtterances: 1, truncated: true, responseTokens: 3 });
    // sample 0 (9 tokens) is cut by 2: BOS and A go
    expect(row(x, 'tokens', 0)).toEqual([...ch('hi'), EOS, B, ...ch('yo')]);
    expect(x.samples[0]).toMatchObject({ contextUtterances: 1, truncated: true });
    // T = 4 = maxUtteranceTokens + 1, the shortest allowed: only the end token of 'yo' is left
    const tight = evalAll({ T: 4 });
    expect(row(tight, 'tokens', 1)).toEqual([EOS, A, ...ch('ok')]);
    expect(row(tight, 'targets', 1)).toEqual([I, ...ch('ok'), EOS]);
    expect(tight.samples[1]).toMatchObject({ contextUtterances: 1, truncated: true });
    expect(() => evalAll({ T: 3 })).toThrow('T = 3 cannot hold a whole response');
  });

  it('cuts every utterance to maxUtteranceTokens (default 49) before its end token', () => {
    const long = 'x'.repeat(60);
    const d: Dialog[] = [{ id: 0, turns: [long, `${'y'.repeat(55)}`] }];
    const x = [...dialogEvalBatches(d, { tokenizer: tok, T: 128, B: 1 })][0];
    const ctx = [BOS, A, ...Array(49).fill(120), EOS];
    const resp = [B, ...Array(49).fill(121)];
    expect(row(x, 'tokens')).toEqual(padTo([...ctx, ...resp], 128, PAD));
    expect(row(x, 'targets')).toEqual(padTo([...Array(ctx.length).fill(I), ...Array(49).fill(121), EOS], 128, I));
    expect(x.samples[0].responseTokens).toBe(50);
  });
});

describe('dialogBatches (training order)', () => {
  const many: Dialog[] = Array.from({ length: 7 }, (_, i) => ({
    id: i,
    turns: Array.from({ length: 2 + (i % 3) }, (_, j) => `u${i}.${j}`),
  }));
  const opts = { tokenizer: tok, T: 64, B: 3, seed: 5, context: 2 as const };

  it('covers every sample once per epoch in a seeded order', () => {
    const n = countDialogSamples(many); // 7 dialogs of 2,3,4,2,3,4,2 turns → 13
    expect(n).toBe(13);
    const L = dialogBatches(many, { ...opts, B: 13 });
    expect(L.samples).toBe(13);
    const e0 = L.next().samples.map((s) => s.id);
    const e1 = L.next().samples.map((s) => s.id);
    expect([...e0].sort((a, b) => a - b)).toEqual([...Array(13).keys()]);
    expect([...e1].sort((a, b) => a - b)).toEqual([...Array(13).keys()]);
    expect(e0).not.toEqual(e1);
    expect(
      dialogBatches(many, { ...opts, B: 13 })
        .next()
        .samples.map((s) => s.id),
    ).toEqual(e0);
    expect(
      dialogBatches(many, { ...opts, B: 13, seed: 6 })
        .next()
        .samples.map((s) => s.id),
    ).not.toEqual(e0);
  });

  it('rows match the evaluation rows of the same samples', () => {
    const ev = [...dialogEvalBatches(many, { tokenizer: tok, T: 64, B: 13, context: 2 })][0];
    const x = dialogBatches(many, opts).next();
    x.samples.forEach((s, r) => {
      expect(row(x, 'tokens', r)).toEqual(row(ev, 'tokens', s.id));
      expect(row(x, 'targets', r)).toEqual(row(ev, 'targets', s.id));
      expect(row(x, 'sampleIds', r)).toEqual(row(ev, 'sampleIds', s.id));
    });
  });

  it('state() resumes with exactly the next batches, across epochs', () => {
    const L = dialogBatches(many, opts);
    for (let i = 0; i < 6; i++) L.next();
    const saved = JSON.parse(JSON.stringify(L.state())) as DialogLoaderState;
    const want = Array.from({ length: 7 }, () => L.next());
    const R = dialogBatches(many, opts, saved);
    expect(Array.from({ length: 7 }, () => R.next())).toEqual(want);
    expect(() => dialogBatches(many, { ...opts, context: 3 }, saved)).toThrow('dialogBatches: state.context is 2 but this loader has 3');
    expect(() => dialogBatches(many.slice(1), opts, saved)).toThrow('(different dialogs)');
  });
});

describe('DailyDialog validation rows', () => {
  const val = loadDailyDialog(sharedData('dailydialog'), 'validation');

  it('byte and gpt2 rows decode to the real dialog with speaker tokens', () => {
    for (const kind of ['byte', 'gpt2'] as const) {
      const t = createTokenizer({ kind });
      const batches = [...dialogEvalBatches(val, { tokenizer: t, T: 512, B: 64, maxRows: 64 })];
      const x = batches[0];
      expect(x.B).toBe(64);
      const d0 = val[0];
      const len = x.samples[0].responseTokens;
      const toks = row(x, 'tokens', 0).filter((id) => id !== t.pad);
      const cut = (s: string) => t.decode(t.encode(s).slice(0, 49));
      expect(t.decode(toks)).toBe(`<bos><A>${cut(d0.turns[0])}<eos><B>${cut(d0.turns[1])}`);
      expect(len).toBe(Math.min(49, t.encode(d0.turns[1]).length) + 1);
      for (const s of x.samples) expect(s.contextUtterances).toBeLessThanOrEqual(s.historyLength);
    }
  });

  it('counts the responses of the split: utterances − dialogs', () => {
    expect(countDialogSamples(val)).toBe(8069 - 1000);
    const L = dialogBatches(val, { tokenizer: tok, T: 256, B: 32, context: 'all' });
    const x = L.next();
    for (let r = 0; r < x.B; r++) {
      const tg = row(x, 'targets', r);
      const ids = row(x, 'sampleIds', r);
      expect(tg.filter((v) => v !== I).length).toBe(x.samples[r].responseTokens);
      expect(ids.filter((v) => v === x.samples[r].id).length).toBe(x.samples[r].responseTokens);
      expect(tg.filter((v) => v !== I).at(-1)).toBe(EOS);
    }
  });
});

describe('dialog batching errors', () => {
  it('name the option and what is wrong', () => {
    const o = { tokenizer: tok, T: 64, B: 1 };
    expect(() => dialogBatches([], o)).toThrow('dialogBatches: dialogs is empty: no data to batch');
    expect(() => dialogBatches([{ id: 0, turns: ['solo'] }], o)).toThrow(
      'dialogBatches: no dialog has two or more utterances: nothing to predict',
    );
    expect(() => dialogBatches(dialogs, { ...o, T: 40 })).toThrow(
      'dialogBatches: T = 40 cannot hold a whole response (speaker + up to maxUtteranceTokens = 49 tokens + end); use T ≥ 50',
    );
    expect(() => dialogBatches(dialogs, { ...o, T: 64, context: -1 })).toThrow(
      "dialogBatches: context must be an integer ≥ 0 or 'all', got -1",
    );
    expect(() => dialogBatches([{ id: 'z', turns: ['a', 'b'], speakers: [0, 2] }], { ...o, T: 64 })).toThrow(
      'dialogBatches: dialog z: speaker 2 but the tokenizer has 2 speaker tokens (spec speakers)',
    );
    expect(() => dialogBatches(dialogs, { ...o, T: 64, window: 3 } as never)).toThrow('dialogBatches: unknown option "window"');
    expect(() => dialogEvalBatches(dialogs, { ...o, T: 64, maxRows: 0 }).next()).toThrow(
      'dialogEvalBatches: maxRows must be an integer in [1,',
    );
  });
});
