import { describe, expect, it } from 'vitest';
import { createTask, IGNORE_INDEX, type SyntheticBatch, type SyntheticTask, type TaskLoaderState } from '../src/index.js';

const I = IGNORE_INDEX;
const rowOf = (x: SyntheticBatch, key: 'tokens' | 'targets', r: number) => Array.from(x[key].subarray(r * x.T, (r + 1) * x.T));

/** pred = the true targets at answer positions (anything elsewhere). */
const truth = (x: SyntheticBatch) => Int32Array.from(x.targets, (t) => (t === I ? 0 : t));

function constantGuessAccuracy(task: SyntheticTask<any>, guess: number, rows: number) {
  let correct = 0;
  let total = 0;
  for (const x of task.evalBatches({ rows })) {
    const a = task.accuracy(new Int32Array(x.B * x.T).fill(guess), x);
    correct += a.correct;
    total += a.total;
  }
  return { acc: correct / total, total };
}

function resumes(task: SyntheticTask<any>) {
  const L = task.batches(7);
  L.next();
  L.next();
  const s = JSON.parse(JSON.stringify(L.state())) as TaskLoaderState;
  const want = [L.next(), L.next(), L.next()];
  const R = task.batches(s);
  expect([R.next(), R.next(), R.next()]).toEqual(want);
  expect(task.batches(7).next()).toEqual(task.batches(7).next());
  expect(task.batches(8).next().tokens).not.toEqual(task.batches(7).next().tokens);
  // evaluation rows come from another stream than training rows of the same seed
  expect((task.evalBatches({ rows: task.B, seed: 7 }).next().value as SyntheticBatch).tokens).not.toEqual(task.batches(7).next().tokens);
}

describe('MQAR', () => {
  const task = createTask('mqar', { T: 24, B: 64, pairs: 3, keys: 4, values: 5, gap: 2, fillerTokens: 3 });
  // ids: PAD 0, BOS 1, keys 2..5, values 6..10, fillers 11..13
  const [K0, V0, F0] = [2, 6, 11];

  it('rows: BOS, k v ×3, 2 fillers, q a ×3, PAD; targets only at query keys', () => {
    expect(task.vocabSize).toBe(14);
    expect(task.chance).toBeCloseTo(1 / 5, 12);
    expect(task.describe()).toContain('key–query distance 4..12');
    const x = task.batches(1).next();
    for (let r = 0; r < x.B; r++) {
      const t = rowOf(x, 'tokens', r);
      const g = rowOf(x, 'targets', r);
      expect(t[0]).toBe(1);
      const keys = [t[1], t[3], t[5]];
      const vals = [t[2], t[4], t[6]];
      for (const k of keys) expect(k >= K0 && k < V0).toBe(true);
      for (const v of vals) expect(v >= V0 && v < F0).toBe(true);
      expect(new Set(keys).size).toBe(3);
      for (const f of t.slice(7, 9)) expect(f >= F0 && f < 14).toBe(true);
      const qs = [t[9], t[11], t[13]];
      expect([...qs].sort()).toEqual([...keys].sort());
      for (let j = 0; j < 3; j++) {
        const v = vals[keys.indexOf(qs[j])];
        expect(t[10 + 2 * j]).toBe(v);
        expect(g[9 + 2 * j]).toBe(v);
      }
      expect(t.slice(15)).toEqual(Array(9).fill(0));
      expect(g.filter((v) => v !== I).length).toBe(3);
      const info = x.rows[r];
      expect(info.answers).toEqual([9, 11, 13]);
      expect(info.groups).toEqual(qs.map((q, j) => 9 + 2 * j - (1 + 2 * keys.indexOf(q))));
    }
    expect(task.decode([1, 2, 7, 11, 0])).toBe('<bos> k0 v1 f0 <pad>');
  });

  it('gap "max" fills the row; defaults are 4 pairs, 8 keys, 8 values, T 32, B 32', () => {
    const full = createTask('mqar', { T: 40, pairs: 2, gap: 'max' });
    expect(full.options.gap).toBe(40 - 9);
    expect(rowOf(full.batches(0).next(), 'tokens', 0)).not.toContain(0);
    const d = createTask('mqar');
    expect(d.options).toEqual({ T: 32, B: 32, pairs: 4, keys: 8, values: 8, queries: 4, gap: 0, fillerTokens: 16, episodes: 1 });
    expect(d.vocabSize).toBe(2 + 8 + 8 + 16);
    expect(d.batches(0).next().docStarts).toBeUndefined();
  });

  it('episodes: independent episodes back to back, each BOS marked in docStarts', () => {
    const one = createTask('mqar', { T: 24, B: 4, pairs: 3, keys: 4, values: 5, gap: 2, fillerTokens: 3 });
    const many = createTask('mqar', { T: 50, B: 4, pairs: 3, keys: 4, values: 5, gap: 2, fillerTokens: 3, episodes: 'fill' });
    expect(many.options.episodes).toBe(3); // 3 × 15 tokens in 50
    const x = many.batches(0).next();
    for (let r = 0; r < x.B; r++) {
      const t = rowOf(x, 'tokens', r);
      const g = rowOf(x, 'targets', r);
      expect(Array.from(x.docStarts!.subarray(r * 50, (r + 1) * 50)).flatMap((v, p) => (v ? [p] : []))).toEqual([0, 15, 30]);
      expect(t.slice(45)).toEqual(Array(5).fill(0));
      expect(x.rows[r].answers).toEqual([9, 11, 13, 24, 26, 28, 39, 41, 43]);
      for (let e = 0; e < 3; e++) {
        const ep = t.slice(15 * e, 15 * e + 15);
        const keys = [ep[1], ep[3], ep[5]];
        for (let j = 0; j < 3; j++) {
          const k = keys.indexOf(ep[9 + 2 * j]);
          expect(g[15 * e + 9 + 2 * j]).toBe(ep[2 + 2 * k]);
          // distance measured inside the episode: query position − its key's position
          expect(x.rows[r].groups[3 * e + j]).toBe(9 + 2 * j - (1 + 2 * k));
        }
      }
    }
    expect(one.describe()).toContain('1 episode of 15 tokens');
    expect(() => createTask('mqar', { T: 40, pairs: 3, episodes: 4 })).toThrow(
      'createTask(mqar): 4 episodes of 13 tokens need T ≥ 52, but T = 40',
    );
  });

  it('accuracy: the true targets score 1, a constant guess scores ≈ chance', () => {
    for (const x of task.evalBatches({ rows: 128 })) expect(task.accuracy(truth(x), x)).toEqual({ correct: 3 * x.B, total: 3 * x.B });
    const { acc, total } = constantGuessAccuracy(task, V0, 2048);
    expect(total).toBe(3 * 2048);
    expect(Math.abs(acc - task.chance)).toBeLessThan(0.03);
    const x = task.evalBatches({ rows: 64 }).next().value as SyntheticBatch;
    const byDist = task.accuracyByGroup(truth(x), x);
    expect([...byDist.keys()].every((k) => k >= 4 && k <= 12)).toBe(true);
    expect([...byDist.values()].reduce((n, a) => n + a.total, 0)).toBe(3 * 64);
  });

  it('resumes from state() and is deterministic per seed', () => resumes(task));
});

describe('needle in a haystack', () => {
  const task = createTask('needle', { T: 40, B: 10, keys: 4, values: 6, fillerTokens: 5, depths: [0, 0.5, 1] });
  // ids: PAD 0, BOS 1, NEEDLE 2, QUERY 3, keys 4..7, values 8..13, fillers 14..18

  it('the needle sits at the chosen depth; the query at the end asks its key', () => {
    const x = task.evalBatches({ rows: 6 }).next().value as SyntheticBatch;
    const H = 40 - 3;
    for (let r = 0; r < 6; r++) {
      const depth = [0, 0.5, 1][r % 3];
      const t = rowOf(x, 'tokens', r);
      const g = rowOf(x, 'targets', r);
      const at = 1 + Math.round(depth * (H - 3));
      expect(t[0]).toBe(1);
      expect(t.indexOf(2)).toBe(at);
      expect(t.lastIndexOf(2)).toBe(at);
      expect(t[38]).toBe(3);
      expect(t[39]).toBe(t[at + 1]);
      expect(g[39]).toBe(t[at + 2]);
      expect(g.slice(0, 39)).toEqual(Array(39).fill(I));
      for (let p = 1; p < 38; p++) if (p < at || p > at + 2) expect(t[p] >= 14 && t[p] < 19).toBe(true);
      expect(x.rows[r]).toEqual({ answers: [39], groups: [depth] });
    }
    expect(rowOf(x, 'tokens', 1)[1 + 17]).toBe(2); // depth 0.5 of H − 3 = 34 → offset 17
  });

  it('distractors carry other keys; accuracy by depth; constant guess ≈ chance', () => {
    const d = createTask('needle', { T: 64, B: 32, keys: 8, distractors: 3 });
    const x = d.batches(3).next();
    for (let r = 0; r < x.B; r++) {
      const t = rowOf(x, 'tokens', r);
      const needles = t.flatMap((v, p) => (v === 2 ? [p] : []));
      expect(needles.length).toBe(4);
      const keys = needles.map((p) => t[p + 1]);
      expect(new Set(keys).size).toBe(4);
      expect(keys).toContain(t[63]);
      expect(rowOf(x, 'targets', r)[63]).toBe(t[needles[keys.indexOf(t[63])] + 2]);
    }
    const e = task.evalBatches({ rows: 30 }).next().value as SyntheticBatch;
    const byDepth = task.accuracyByGroup(truth(e), e);
    expect([...byDepth]).toEqual([
      [0, { correct: 4, total: 4 }],
      [0.5, { correct: 3, total: 3 }],
      [1, { correct: 3, total: 3 }],
    ]);
    const { acc } = constantGuessAccuracy(task, 8, 3000);
    expect(Math.abs(acc - 1 / 6)).toBeLessThan(0.03);
  });

  it('resumes from state() and is deterministic per seed', () => resumes(task));
});

describe('synthetic dialog recall', () => {
  const task = createTask('dialog', { B: 32, distance: [2, 5], facts: 3, attributes: 4, values: 6, words: 5, wordsPerUtterance: 2 });
  // ids: PAD 0, BOS 1, EOU 2, A 3, B 4, FACT 5, ASK 6, attributes 7..10, values 11..16, words 17..21

  it('the reply recalls the asked fact, said exactly `distance` utterances earlier', () => {
    for (const x of [task.batches(2).next(), task.evalBatches({ rows: 32 }).next().value as SyntheticBatch]) {
      for (let r = 0; r < x.B; r++) {
        const t = rowOf(x, 'tokens', r).filter((v) => v !== 0);
        const g = rowOf(x, 'targets', r);
        expect(t[0]).toBe(1);
        // utterances: [spk, …, EOU]
        const utts: number[][] = [];
        let cur: number[] = [];
        for (const v of t.slice(1)) {
          cur.push(v);
          if (v === 2) {
            utts.push(cur);
            cur = [];
          }
        }
        expect(cur).toEqual([]);
        utts.forEach((u, j) => {
          expect(u[0]).toBe(j % 2 === 0 ? 3 : 4);
        });
        const reply = utts.length - 1;
        const question = utts[reply - 1];
        expect(question[1]).toBe(6);
        const asked = question[2];
        const factAt = utts.findIndex((u) => u[1] === 5 && u[2] === asked);
        const n = x.rows[r].groups[0];
        expect(reply - factAt).toBe(n);
        expect(utts.filter((u) => u[1] === 5).length).toBe(3);
        expect(new Set(utts.filter((u) => u[1] === 5).map((u) => u[2])).size).toBe(3);
        const value = utts[factAt][3];
        expect(utts[reply]).toEqual([utts[reply][0], value, 2]);
        const answerPos = x.rows[r].answers[0];
        expect(g[answerPos]).toBe(value);
        expect(g.filter((v) => v !== I).length).toBe(1);
        expect(rowOf(x, 'tokens', r)[answerPos]).toBe(utts[reply][0]);
      }
    }
    const e = task.evalBatches({ rows: 4 }).next().value as SyntheticBatch;
    expect(e.rows.map((r) => r.groups[0])).toEqual([2, 5, 2, 5]);
  });

  it('accuracy by distance; constant guess ≈ chance; defaults', () => {
    const e = task.evalBatches({ rows: 20 }).next().value as SyntheticBatch;
    expect([...task.accuracyByGroup(truth(e), e)]).toEqual([
      [2, { correct: 10, total: 10 }],
      [5, { correct: 10, total: 10 }],
    ]);
    const { acc } = constantGuessAccuracy(task, 11, 3000);
    expect(Math.abs(acc - 1 / 6)).toBeLessThan(0.03);
    const d = createTask('dialog');
    expect(d.options).toMatchObject({ T: 256, distance: [4], facts: 2, attributes: 8, values: 16 });
    expect(d.decode([1, 3, 5, 7, 15, 2])).toBe('<bos> <A> <fact> a0 v0 <eou>'); // 8 attributes: values from 15
  });

  it('resumes from state() and is deterministic per seed', () => resumes(task));
});

describe('synthetic task errors', () => {
  it('name the task, the option and what is wrong', () => {
    expect(() => createTask('copy')).toThrow('createTask: unknown task "copy" (expected one of mqar, needle, dialog)');
    expect(() => createTask('mqar', { pairs: 20 })).toThrow('createTask(mqar): pairs = 20 needs as many distinct keys, but keys = 8');
    expect(() => createTask('mqar', { T: 16 })).toThrow(
      'createTask(mqar): a row needs 1 + 2·pairs + gap + 2·queries = 17 tokens but T = 16',
    );
    expect(() => createTask('mqar', { queries: 5 })).toThrow('createTask(mqar): queries = 5 must be ≤ pairs = 4');
    expect(() => createTask('mqar', { gap: -1 })).toThrow('createTask(mqar): gap must be an integer ≥ 0, got -1');
    expect(() => createTask('mqar', { pairz: 2 } as never)).toThrow('createTask(mqar): unknown option "pairz"');
    expect(() => createTask('needle', { depths: [1.5] })).toThrow(
      'createTask(needle): depths must be a non-empty array of numbers in [0, 1], got [1.5]',
    );
    expect(() => createTask('needle', { T: 12, distractors: 2 })).toThrow(
      'createTask(needle): T = 12 is too short for 3 needles (need T ≥ 20)',
    );
    expect(() => createTask('dialog', { distance: 1 })).toThrow(
      'createTask(dialog): distance must be an integer ≥ 2 or a non-empty list of them, got 1',
    );
    expect(() => createTask('dialog', { T: 32, distance: 8 })).toThrow('createTask(dialog): a dialog at distance 8 needs');
    const t = createTask('mqar', { T: 40, B: 16 });
    const x = t.batches(0).next();
    expect(() => t.accuracy(new Int32Array(3), x)).toThrow('mqar.accuracy: pred has 3 values but the batch has B·T = 640 positions');
    expect(() => t.batches({ ...t.batches(0).state(), task: 'needle' })).toThrow('mqar.batches: state is not a mqar loader state');
    expect(() => createTask('mqar', { T: 41 }).batches(t.batches(0).state())).toThrow('mqar.batches: state.T is 40 but this task has 41');
  });
});
