/**
 * Needle in a haystack. A row of exactly T tokens is
 *   BOS, filler…, NEEDLE key value, filler…, QUERY key
 * with the needle starting at `depth` of the haystack (0: right after BOS, 1: right before the
 * query). The target at the final key is the needle's value. Optional distractor needles carry
 * other keys. Training rows draw the depth uniformly in [0, 1]; evaluation rows cycle through
 * `depths`, and accuracy is reported by depth.
 */
import { fail } from '@foxgate/tensor';
import type { Rng } from '../random.js';
import { makeTask, names, type RowInfo, type SyntheticTask, taskOptions } from './task.js';

export interface NeedleOptions {
  /** Row length (default 256). */
  T?: number;
  /** Rows per batch (default 16). */
  B?: number;
  /** Key vocabulary (default 16). */
  keys?: number;
  /** Value vocabulary (default 16); chance is 1/values. */
  values?: number;
  /** Filler vocabulary (default 32). */
  fillerTokens?: number;
  /** Extra needles with other keys (default 0), at random places. */
  distractors?: number;
  /** Depths of the evaluation rows, each in [0, 1] (default [0, 0.25, 0.5, 0.75, 1]). */
  depths?: number[];
}

export type ResolvedNeedleOptions = Required<NeedleOptions>;

const KEYS = ['T', 'B', 'keys', 'values', 'fillerTokens', 'distractors', 'depths'];

export function needleTask(opts: NeedleOptions = {}): SyntheticTask<ResolvedNeedleOptions> {
  const op = 'createTask(needle)';
  const int = taskOptions(op, opts, KEYS);
  const T = int.positive('T', 256);
  const B = int.positive('B', 16);
  const keys = int.positive('keys', 16, 1 << 20);
  const values = int.positive('values', 16, 1 << 20);
  const fillerTokens = int.positive('fillerTokens', 32, 1 << 20);
  const distractors = int.nonNegative('distractors', 0);
  const depths = opts.depths ?? [0, 0.25, 0.5, 0.75, 1];
  if (!Array.isArray(depths) || depths.length === 0 || !depths.every((d) => typeof d === 'number' && d >= 0 && d <= 1)) {
    fail(op, `depths must be a non-empty array of numbers in [0, 1], got ${JSON.stringify(depths)}`);
  }
  if (distractors + 1 > keys) fail(op, `${distractors} distractors need ${distractors + 1} distinct keys, but keys = ${keys}`);
  // Haystack H = positions 1..T-3 (between BOS and QUERY key); needles take 3 each.
  const H = T - 3;
  // Each placed needle rules out at most 5 start offsets of the H − 2, so placement always succeeds.
  if (H - 2 < 5 * (distractors + 1))
    fail(op, `T = ${T} is too short for ${distractors + 1} needles (need T ≥ ${5 * (distractors + 1) + 5})`);

  const PAD = 0;
  const BOS = 1;
  const NEEDLE = 2;
  const QUERY = 3;
  const K0 = 4;
  const V0 = K0 + keys;
  const F0 = V0 + values;
  const vocabSize = F0 + fillerTokens;
  const tokenNames = ['<pad>', '<bos>', '<needle>', '<query>', ...names('k', keys), ...names('v', values), ...names('f', fillerTokens)];
  const options: ResolvedNeedleOptions = { T, B, keys, values, fillerTokens, distractors, depths: [...depths] };

  const row = (rng: Rng, index: number, evaluation: boolean, tokens: Int32Array, targets: Int32Array, base: number): RowInfo => {
    const depth = evaluation ? depths[index % depths.length] : rng.float();
    const ks = rng.sample(keys, distractors + 1);
    const vs = ks.map(() => rng.below(values));
    tokens[base] = BOS;
    for (let t = 1; t < T - 2; t++) tokens[base + t] = F0 + rng.below(fillerTokens);
    // Needle starts are haystack offsets s in [0, H-3], placed at 1 + s.
    const startOf = (d: number) => Math.round(d * (H - 3));
    const starts = [startOf(depth)];
    for (let k = 0; k < distractors; k++) {
      let s = 0;
      do s = rng.below(H - 2);
      while (!starts.every((o) => Math.abs(o - s) >= 3));
      starts.push(s);
    }
    starts.forEach((s, k) => {
      tokens[base + 1 + s] = NEEDLE;
      tokens[base + 2 + s] = K0 + ks[k];
      tokens[base + 3 + s] = V0 + vs[k];
    });
    tokens[base + T - 2] = QUERY;
    tokens[base + T - 1] = K0 + ks[0];
    targets[base + T - 1] = V0 + vs[0];
    return { answers: [T - 1], groups: [depth] };
  };

  return makeTask({
    name: 'needle',
    salt: 0x6e65656c,
    options,
    vocabSize,
    chance: 1 / values,
    groupName: 'depth',
    names: tokenNames,
    pad: PAD,
    describe:
      `needle: a needle (key of ${keys} → value of ${values}) in T = ${T} tokens of filler (${fillerTokens} kinds), ` +
      `${distractors} distractor needles, query at the end; evaluation depths ${depths.join(', ')}; vocab ${vocabSize}; ` +
      `chance ${(1 / values).toFixed(4)}`,
    row,
  });
}
