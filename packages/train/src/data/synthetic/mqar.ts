/**
 * Multi-query associative recall (MQAR). A row is
 *   BOS, k1 v1 … kP vP, (gap filler tokens), q1 a1 … qQ aQ, PAD…
 * with P distinct keys, values drawn with replacement, and the queries a random order of Q of
 * the keys, each followed by its value. The target at a query key's position is its value
 * (nothing else has a loss). The key–query distance (query position − key position) is set by
 * `gap`: it lies in [gap + 2, gap + 2P + 2Q − 2].
 *
 * With `episodes` > 1 (or 'fill') a row holds several independent episodes back to back, each
 * starting with BOS and marked in `docStarts` (for FoX document resets): more answers per row at
 * the same cost when T is much longer than one episode.
 */
import { fail } from '@foxgate/tensor';
import type { Rng } from '../random.js';
import { makeTask, names, type RowInfo, type SyntheticTask, taskOptions } from './task.js';

export interface MqarOptions {
  /** Row length (default 256). */
  T?: number;
  /** Rows per batch (default 16). */
  B?: number;
  /** Key–value pairs per row (default 8). */
  pairs?: number;
  /** Key vocabulary (default 16). */
  keys?: number;
  /** Value vocabulary (default 16); chance is 1/values. */
  values?: number;
  /** Queries per row, ≤ pairs (default: pairs). */
  queries?: number;
  /** Filler tokens between the pairs and the queries (default 0); 'max' fills the row. */
  gap?: number | 'max';
  /** Filler vocabulary (default 16). */
  fillerTokens?: number;
  /** Independent episodes per row (default 1); 'fill' puts as many as fit. */
  episodes?: number | 'fill';
}

export type ResolvedMqarOptions = Required<Omit<MqarOptions, 'gap' | 'episodes'>> & { gap: number; episodes: number };

const KEYS = ['T', 'B', 'pairs', 'keys', 'values', 'queries', 'gap', 'fillerTokens', 'episodes'];

export function mqarTask(opts: MqarOptions = {}): SyntheticTask<ResolvedMqarOptions> {
  const op = 'createTask(mqar)';
  const int = taskOptions(op, opts, KEYS);
  const T = int.positive('T', 32);
  const B = int.positive('B', 32);
  const pairs = int.positive('pairs', 4);
  const keys = int.positive('keys', 8, 1 << 20);
  const values = int.positive('values', 8, 1 << 20);
  const queries = int.positive('queries', pairs);
  const fillerTokens = int.positive('fillerTokens', 16, 1 << 20);
  if (pairs > keys) fail(op, `pairs = ${pairs} needs as many distinct keys, but keys = ${keys}`);
  if (queries > pairs) fail(op, `queries = ${queries} must be ≤ pairs = ${pairs}`);
  const used = 1 + 2 * pairs + 2 * queries;
  const gap = opts.gap === 'max' ? Math.max(0, T - used) : int.nonNegative('gap', 0);
  if (used + gap > T) fail(op, `a row needs 1 + 2·pairs + gap + 2·queries = ${used + gap} tokens but T = ${T}`);
  const span = used + gap;
  const episodes = opts.episodes === 'fill' ? Math.floor(T / span) : int.positive('episodes', 1);
  if (episodes * span > T) fail(op, `${episodes} episodes of ${span} tokens need T ≥ ${episodes * span}, but T = ${T}`);

  const PAD = 0;
  const BOS = 1;
  const K0 = 2;
  const V0 = K0 + keys;
  const F0 = V0 + values;
  const vocabSize = F0 + fillerTokens;
  const tokenNames = ['<pad>', '<bos>', ...names('k', keys), ...names('v', values), ...names('f', fillerTokens)];
  const options: ResolvedMqarOptions = { T, B, pairs, keys, values, queries, gap, fillerTokens, episodes };

  const row = (
    rng: Rng,
    _index: number,
    _evaluation: boolean,
    tokens: Int32Array,
    targets: Int32Array,
    base: number,
    docStarts?: Uint8Array,
  ): RowInfo => {
    const info: RowInfo = { answers: [], groups: [] };
    for (let e = 0; e < episodes; e++) {
      const start = e * span;
      const ks = rng.sample(keys, pairs);
      const vs = ks.map(() => rng.below(values));
      let t = base + start;
      if (docStarts) docStarts[t] = 1;
      tokens[t++] = BOS;
      for (let j = 0; j < pairs; j++) {
        tokens[t++] = K0 + ks[j];
        tokens[t++] = V0 + vs[j];
      }
      for (let g = 0; g < gap; g++) tokens[t++] = F0 + rng.below(fillerTokens);
      for (const j of rng.sample(pairs, queries)) {
        const at = t - base;
        tokens[t] = K0 + ks[j];
        targets[t++] = V0 + vs[j];
        tokens[t++] = V0 + vs[j];
        info.answers.push(at);
        info.groups.push(at - (start + 1 + 2 * j));
      }
    }
    return info;
  };

  return makeTask({
    name: 'mqar',
    salt: 0x6d716172,
    options,
    vocabSize,
    chance: 1 / values,
    groupName: 'distance',
    names: tokenNames,
    pad: PAD,
    docStarts: episodes > 1,
    describe:
      `mqar: ${pairs} key–value pairs (keys of ${keys}, values of ${values}), ${queries} queries, gap ${gap}: ` +
      `key–query distance ${gap + 2}..${gap + 2 * pairs + 2 * queries - 2}; ${episodes} episode${episodes > 1 ? 's' : ''} of ${span} ` +
      `tokens in T = ${T}; ` +
      `vocab ${vocabSize}; chance ${(1 / values).toFixed(4)}`,
    row,
  });
}
