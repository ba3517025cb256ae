import { fail, philox4x32, rngKey } from '@foxgate/tensor';

/** How the next token is drawn from one row of logits. */
export interface SamplingOptions {
  /** Softmax temperature (default 1); 0 picks the largest logit (greedy). */
  temperature?: number;
  /** Keep only the k largest logits (ties broken by the lower id). */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p (nucleus sampling), 0 < p ≤ 1. */
  topP?: number;
}

/** Checks sampling options (one line naming the option). */
export function checkSampling(op: string, o: SamplingOptions): void {
  const t = o.temperature;
  if (t !== undefined && (typeof t !== 'number' || !Number.isFinite(t) || t < 0)) {
    fail(op, `opts.temperature must be a finite number ≥ 0 (0 = greedy), got ${String(t)}`);
  }
  if (o.topK !== undefined && (!Number.isInteger(o.topK) || o.topK < 1))
    fail(op, `opts.topK must be a positive integer, got ${String(o.topK)}`);
  if (o.topP !== undefined && (typeof o.topP !== 'number' || !(o.topP > 0 && o.topP <= 1))) {
    fail(op, `opts.topP must be a number in (0, 1], got ${String(o.topP)}`);
  }
}

/** The id of the largest value (the lowest id among equal ones). */
export function argmaxOf(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/**
 * The distribution tokens are drawn from: ids (most likely first when top-k or top-p is on,
 * else in id order) and their probabilities (float64, summing to 1) after temperature, top-k
 * and top-p. Greedy (temperature 0) is the single largest logit.
 */
export function samplingDistribution(row: ArrayLike<number>, o: SamplingOptions = {}): { ids: number[]; probs: Float64Array } {
  const temperature = o.temperature ?? 1;
  if (temperature === 0) return { ids: [argmaxOf(row)], probs: Float64Array.of(1) };
  const V = row.length;
  let ids = Array.from({ length: V }, (_, i) => i);
  const filtered = o.topK !== undefined || o.topP !== undefined;
  if (filtered) ids.sort((a, b) => row[b] - row[a] || a - b);
  if (o.topK !== undefined && o.topK < V) ids = ids.slice(0, o.topK);
  let mx = Number.NEGATIVE_INFINITY;
  for (const i of ids) mx = Math.max(mx, row[i]);
  let probs = Float64Array.from(ids, (i) => Math.exp((row[i] - mx) / temperature));
  let total = probs.reduce((a, b) => a + b, 0);
  if (o.topP !== undefined && o.topP < 1) {
    let cum = 0;
    let keep = 0;
    while (keep < ids.length) {
      cum += probs[keep++] / total;
      if (cum >= o.topP) break;
    }
    ids = ids.slice(0, keep);
    probs = probs.slice(0, keep);
    total = probs.reduce((a, b) => a + b, 0);
  }
  for (let i = 0; i < probs.length; i++) probs[i] /= total;
  return { ids, probs };
}

/**
 * A uniform number in [0, 1) for (seed, step, row): Philox-4x32-10 of the counter
 * (step, row, 0, 0) under the seed's key, 53 bits. Counter-based: the same on every backend
 * and independent of how many other rows or steps were drawn.
 */
export function sampleUniform(seed: number, step: number, row: number): number {
  const key = rngKey(seed);
  const w = philox4x32(step, row, 0, 0, key.k0, key.k1);
  return ((w[0] >>> 5) * 67108864 + (w[1] >>> 6)) / 9007199254740992;
}

/** Draws a token from one row of logits with the uniform `u` (inverse CDF over `samplingDistribution`). */
export function sampleToken(row: ArrayLike<number>, o: SamplingOptions, u: number): number {
  const { ids, probs } = samplingDistribution(row, o);
  let cum = 0;
  for (let i = 0; i < ids.length; i++) {
    cum += probs[i];
    if (u < cum) return ids[i];
  }
  return ids[ids.length - 1];
}
