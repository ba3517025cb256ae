/** The batch shape every loader (language modelling, dialog, synthetic tasks) produces. */
import { fail } from '@foxgate/tensor';

/** Target value of positions that carry no loss. */
export const IGNORE_INDEX = -100;

/**
 * B rows of T positions, row-major. `targets[b*T+t]` is the token position t must predict
 * (aligned with `tokens`), IGNORE_INDEX where there is no loss.
 */
export interface Batch {
  B: number;
  T: number;
  tokens: Int32Array;
  targets: Int32Array;
  /** 1 where a new document starts inside the row (for FoX resets); position 0 only if one really starts there. */
  docStarts?: Uint8Array;
  /** Dialog sample id per target position, -1 where none (for per-sample perplexity). */
  sampleIds?: Int32Array;
}

/** A loader of training batches whose position is a small JSON value. */
export interface BatchLoader<S> {
  /** The next batch. */
  next(): Batch;
  /** The position: pass it back to the loader's factory to continue with exactly the next batch. */
  state(): S;
}

/** Checks a positive integer option. */
export function checkPositiveInt(op: string, name: string, v: unknown, max = 2 ** 31 - 1): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) {
    fail(op, `${name} must be an integer in [1, ${max}], got ${JSON.stringify(v)}`);
  }
  return v;
}

/** Rejects option keys outside `allowed`. */
export function checkKeys(op: string, opts: object, allowed: readonly string[]): void {
  for (const k of Object.keys(opts)) {
    if (!allowed.includes(k)) fail(op, `unknown option "${k}" (expected one of ${allowed.join(', ')})`);
  }
}

/** A batch of B rows of T positions filled with `pad` tokens and IGNORE_INDEX targets. */
export function emptyBatch(B: number, T: number, pad: number): Batch {
  const tokens = new Int32Array(B * T).fill(pad);
  const targets = new Int32Array(B * T).fill(IGNORE_INDEX);
  return { B, T, tokens, targets };
}
