/**
 * Deterministic test data shared by the optimizer, clipping and schedule suites, and the
 * one-line-FoxgateError check every suite uses.
 */
import { xorshift32 } from '@foxgate/testing';

export { throwsNaming } from '@foxgate/testing';

/** A stream of uniforms in [0, 1) from xorshift32, deterministic in `seed`. */
export function xorshift(seed: number): () => number {
  const next = xorshift32(seed);
  return () => next() / 4294967296;
}

/** `n` values uniform in [−scale, scale], rounded to float32 so every dtype starts equal. */
export function uniformValues(n: number, seed: number, scale = 1): Float64Array {
  const next = xorshift(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.fround((next() - 0.5) * 2 * scale);
  return out;
}

/**
 * `n` values of magnitude in [lo, hi] with random sign, times `scale`, rounded to float32 (no
 * value near 0 unless `lo` is, so relative checks stay meaningful).
 */
export function signedValues(n: number, seed: number, scale = 1, lo = 0.5, hi = 1.5): Float64Array {
  const next = xorshift(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const u = next();
    const mag = lo + (hi - lo) * ((u * 2) % 1);
    out[i] = Math.fround((u < 0.5 ? -mag : mag) * scale);
  }
  return out;
}
