import { type DType, mul, sum, type Tensor, tensor } from '@foxgate/tensor';

/** A small deterministic generator (LCG) so tests need no RNG from the package under test. */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

let next = lcg(1);

/** Resets the generator used by `rnd` (call at the start of a test for reproducible inputs). */
export function reseed(seed: number): void {
  next = lcg(seed);
}

/** A tensor of uniform values in [lo, hi), float64 on the CPU unless told otherwise. */
export function rnd(shape: number[], lo = -2, hi = 2, opts: { dtype?: DType; backend?: string } = {}): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float64Array(n);
  for (let i = 0; i < n; i++) data[i] = lo + (hi - lo) * next();
  return tensor(data, shape, { dtype: opts.dtype ?? 'float64', backend: opts.backend ?? 'cpu' });
}

/** Values whose magnitude is in [lo, hi) with random signs (keeps clear of 0 for abs, relu, ...). */
export function rndAway(shape: number[], lo = 0.2, hi = 2): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float64Array(n);
  for (let i = 0; i < n; i++) data[i] = (next() < 0.5 ? -1 : 1) * (lo + (hi - lo) * next());
  return tensor(data, shape, { dtype: 'float64', backend: 'cpu' });
}

/** Σ y·w with fixed pseudo-random weights w (same for every call with the same shape). */
export function wsum(y: Tensor): Tensor {
  const gen = lcg(12345);
  const data = new Float64Array(y.size);
  for (let i = 0; i < y.size; i++) data[i] = gen() * 2 - 1;
  const w = tensor(data, [...y.shape], { dtype: y.dtype, backend: y.backend });
  return sum(mul(y, w));
}

/** Max |a − b| over two equal-length arrays. */
export function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
