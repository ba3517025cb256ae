/** Deterministic seeded train/validation splits that hold out whole documents (or dialogs). */
import { fail } from '@foxgate/tensor';
import { checkKeys } from './batch.js';
import { checkSeed, permutation } from './random.js';

export interface SplitOptions {
  /** Seed of the split (default 0); independent of the training seed so the validation set stays put. */
  seed?: number;
  /** Fraction of documents held out (default 0.1); at least one document goes to each side. */
  validationFraction?: number;
}

export interface Split<D> {
  /** In the original order. */
  train: D[];
  /** In the original order. */
  validation: D[];
}

/**
 * Holds out `max(1, round(n·validationFraction))` whole items (at most n − 1) chosen by a seeded
 * permutation; both sides keep the original order. Needs at least 2 items.
 */
export function splitDocuments<D>(items: readonly D[], opts: SplitOptions = {}): Split<D> {
  const op = 'splitDocuments';
  checkKeys(op, opts, ['seed', 'validationFraction']);
  const seed = checkSeed(op, opts.seed ?? 0);
  const frac = opts.validationFraction ?? 0.1;
  if (typeof frac !== 'number' || !(frac > 0 && frac < 1)) fail(op, `validationFraction must be in (0, 1), got ${JSON.stringify(frac)}`);
  const n = items.length;
  if (n < 2) fail(op, `a split needs at least 2 documents, got ${n}`);
  const k = Math.min(n - 1, Math.max(1, Math.round(n * frac)));
  const perm = permutation(n, seed, 0x5b1d);
  const held = new Uint8Array(n);
  for (let i = 0; i < k; i++) held[perm[i]] = 1;
  const train: D[] = [];
  const validation: D[] = [];
  for (let i = 0; i < n; i++) (held[i] ? validation : train).push(items[i]);
  return { train, validation };
}
