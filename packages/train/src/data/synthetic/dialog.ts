/**
 * Synthetic dialog recall: the right reply depends on a fact said `distance` utterances earlier.
 * Utterances (speakers alternate A, B, … from the first one) are
 *   fact      [spk, FACT, attribute, value, EOU]
 *   filler    [spk, word × wordsPerUtterance, EOU]
 *   question  [spk, ASK, attribute, EOU]
 *   reply     [spk, value, EOU]
 * The asked fact is `distance` utterances before the reply, the question right before the reply,
 * fillers between; the other `facts − 1` facts (other attributes) replace random fillers, or come
 * before the asked fact when there are too few. The target at the reply's speaker token is the
 * value; nothing else has a loss. `distance` may be a list: training rows draw from it, evaluation
 * rows cycle through it; accuracy is reported by distance.
 */
import { fail } from '@foxgate/tensor';
import type { Rng } from '../random.js';
import { makeTask, names, type RowInfo, type SyntheticTask, taskOptions } from './task.js';

export interface DialogTaskOptions {
  /** Row length (default 256). */
  T?: number;
  /** Rows per batch (default 16). */
  B?: number;
  /** Utterances from the asked fact to the reply, ≥ 2, or a list of them (default 4). */
  distance?: number | number[];
  /** Facts stated per dialog, one of them asked (default 2). */
  facts?: number;
  /** Attribute vocabulary (default 8). */
  attributes?: number;
  /** Value vocabulary (default 16); chance is 1/values. */
  values?: number;
  /** Filler word vocabulary (default 32). */
  words?: number;
  /** Words per filler utterance (default 4). */
  wordsPerUtterance?: number;
}

export type ResolvedDialogTaskOptions = Required<Omit<DialogTaskOptions, 'distance'>> & { distance: number[] };

const KEYS = ['T', 'B', 'distance', 'facts', 'attributes', 'values', 'words', 'wordsPerUtterance'];

export function dialogTask(opts: DialogTaskOptions = {}): SyntheticTask<ResolvedDialogTaskOptions> {
  const op = 'createTask(dialog)';
  const int = taskOptions(op, opts, KEYS);
  const T = int.positive('T', 256);
  const B = int.positive('B', 16);
  const facts = int.positive('facts', 2);
  const attributes = int.positive('attributes', 8, 1 << 20);
  const values = int.positive('values', 16, 1 << 20);
  const words = int.positive('words', 32, 1 << 20);
  const wpu = int.positive('wordsPerUtterance', 4);
  const dist = opts.distance ?? 4;
  const distances = Array.isArray(dist) ? [...dist] : [dist];
  if (distances.length === 0 || !distances.every((d) => Number.isInteger(d) && d >= 2)) {
    fail(op, `distance must be an integer ≥ 2 or a non-empty list of them, got ${JSON.stringify(dist)}`);
  }
  if (facts > attributes) fail(op, `facts = ${facts} need as many distinct attributes, but attributes = ${attributes}`);
  const FACT_LEN = 5;
  const FILLER_LEN = wpu + 2;
  const rowLength = (n: number) => {
    const slots = n - 2; // utterances strictly between the asked fact and the question
    const before = Math.max(0, facts - 1 - slots);
    const inSlots = facts - 1 - before;
    return 1 + FACT_LEN * (1 + before + inSlots) + FILLER_LEN * (slots - inSlots) + 4 + 3;
  };
  const longest = Math.max(...distances.map(rowLength));
  if (longest > T) fail(op, `a dialog at distance ${Math.max(...distances)} needs ${longest} tokens but T = ${T}`);

  const PAD = 0;
  const BOS = 1;
  const EOU = 2;
  const SPK = [3, 4];
  const FACT = 5;
  const ASK = 6;
  const A0 = 7;
  const V0 = A0 + attributes;
  const W0 = V0 + values;
  const vocabSize = W0 + words;
  const tokenNames = [
    '<pad>',
    '<bos>',
    '<eou>',
    '<A>',
    '<B>',
    '<fact>',
    '<ask>',
    ...names('a', attributes),
    ...names('v', values),
    ...names('w', words),
  ];
  const options: ResolvedDialogTaskOptions = { T, B, distance: distances, facts, attributes, values, words, wordsPerUtterance: wpu };

  const row = (rng: Rng, index: number, evaluation: boolean, tokens: Int32Array, targets: Int32Array, base: number): RowInfo => {
    const n = evaluation ? distances[index % distances.length] : distances[rng.below(distances.length)];
    const attrs = rng.sample(attributes, facts);
    const vals = attrs.map(() => rng.below(values));
    const slots = n - 2;
    const before = Math.max(0, facts - 1 - slots);
    const inSlots = facts - 1 - before;
    // Which filler slots hold the other facts (facts 1..before come first, the rest fill slots).
    const slotFact = new Int32Array(slots).fill(-1);
    rng.sample(slots, inSlots).forEach((s, k) => {
      slotFact[s] = 1 + before + k;
    });
    const utterances: number[][] = [];
    const fact = (k: number) => [FACT, A0 + attrs[k], V0 + vals[k]];
    for (let k = 1; k <= before; k++) utterances.push(fact(k));
    utterances.push(fact(0));
    for (let s = 0; s < slots; s++) {
      if (slotFact[s] >= 0) utterances.push(fact(slotFact[s]));
      else utterances.push(Array.from({ length: wpu }, () => W0 + rng.below(words)));
    }
    utterances.push([ASK, A0 + attrs[0]]);
    let t = base;
    tokens[t++] = BOS;
    utterances.forEach((u, j) => {
      tokens[t++] = SPK[j % 2];
      for (const id of u) tokens[t++] = id;
      tokens[t++] = EOU;
    });
    const at = t - base;
    tokens[t] = SPK[utterances.length % 2];
    targets[t++] = V0 + vals[0];
    tokens[t++] = V0 + vals[0];
    tokens[t++] = EOU;
    return { answers: [at], groups: [n] };
  };

  return makeTask({
    name: 'dialog',
    salt: 0x64696167,
    options,
    vocabSize,
    chance: 1 / values,
    groupName: 'distance',
    names: tokenNames,
    pad: PAD,
    describe:
      `dialog: the reply recalls a fact (attribute of ${attributes} → value of ${values}) said ${distances.join('/')} utterances ` +
      `earlier, ${facts} facts per dialog, fillers of ${wpu} words (of ${words}); up to ${longest} of T = ${T} tokens; ` +
      `vocab ${vocabSize}; chance ${(1 / values).toFixed(4)}`,
    row,
  });
}
