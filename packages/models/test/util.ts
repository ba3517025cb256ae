import { readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { mul, sum, type Tensor, tensor } from '@foxgate/tensor';
import { expect } from 'vitest';

/** A small deterministic generator (LCG), so test inputs need no RNG from the code under test. */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Plain JS values, uniform in [lo, hi), row-major, deterministic in `seed`. */
export function values(n: number, seed: number, lo = -2, hi = 2): number[] {
  const next = lcg(seed);
  return Array.from({ length: n }, () => lo + (hi - lo) * next());
}

/** A float64 CPU tensor of `shape` holding `data` (row-major). */
export function f64(data: number[], shape: number[]): Tensor {
  return tensor(Float64Array.from(data), shape, { dtype: 'float64', backend: 'cpu' });
}

/** Σ y·w with fixed pseudo-random weights w: a scalar whose gradient reaches every element of y. */
export function wsum(y: Tensor): Tensor {
  const w = tensor(Float64Array.from(values(y.size, 12345, -1, 1)), [...y.shape], { dtype: y.dtype, backend: y.backend });
  const out = sum(mul(y, w));
  w.dispose();
  return out;
}

/** Max |a − b|. */
export function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** max |got − want| over max |want| (1 when `want` is all zeros): the relative error of a whole output. */
export function relMaxError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < want.length; i++) {
    d = Math.max(d, Math.abs(got[i] - want[i]));
    m = Math.max(m, Math.abs(want[i]));
  }
  return d / (m || 1);
}

export { rejectsNaming, throwsNaming } from '@foxgate/testing';

/** Row-major `[m,k] @ [k,n]` in plain JS. */
export function refMatmul(a: number[], b: number[], m: number, k: number, n: number): number[] {
  const out = new Array<number>(m * n).fill(0);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += a[i * k + t] * b[t * n + j];
      out[i * n + j] = s;
    }
  return out;
}

/** Mean and population standard deviation. */
export function stats(xs: ArrayLike<number>): { mean: number; std: number } {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  const mean = s / xs.length;
  let v = 0;
  for (let i = 0; i < xs.length; i++) v += (xs[i] - mean) ** 2;
  return { mean, std: Math.sqrt(v / xs.length) };
}

import { repoRoot } from '@foxgate/testing';

export { repoRoot };

/** The folder of the model fixtures (FOXGATE_MODEL_FIXTURES, else ../shared/fixtures/models). */
export function modelFixturesDir(): string {
  return process.env.FOXGATE_MODEL_FIXTURES ?? resolve(repoRoot(), '../shared/fixtures/models');
}

/** The `.safetensors` file names in the model fixtures folder. */
export function modelFixtureFiles(): string[] {
  return readdirSync(modelFixturesDir()).filter((f) => f.endsWith('.safetensors'));
}
