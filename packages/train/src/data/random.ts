/**
 * Small seeded randomness for data order and synthetic tasks: a SplitMix32-style generator
 * (a Weyl sequence of step 0x9e3779b9 through the murmur3 finaliser) whose whole state is one
 * 32-bit integer, and a hash that derives independent streams from (seed, stream words).
 */
import { fail } from '@foxgate/tensor';

const GOLDEN = 0x9e3779b9;

/** The murmur3 32-bit finaliser: a bijection of u32 that mixes every bit. */
export function fmix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

/** A u32 hash of a sequence of integers (each taken as its low 32 bits and its high 21 bits). */
export function hashWords(words: readonly number[]): number {
  let h = 0x243f6a88;
  for (const w of words) {
    const lo = w >>> 0;
    const hi = Math.floor(w / 2 ** 32) >>> 0;
    h = fmix32((h ^ lo) + GOLDEN);
    h = fmix32((h ^ hi) + GOLDEN);
  }
  return h;
}

/** Checks a user seed: a safe integer. */
export function checkSeed(op: string, seed: unknown): number {
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed)) fail(op, `seed must be an integer, got ${JSON.stringify(seed)}`);
  return seed;
}

/** A seeded generator; `new Rng(seed, a, b, …)` gives an independent stream per (seed, a, b, …). */
export class Rng {
  private s: number;
  constructor(seed: number, ...stream: number[]) {
    this.s = hashWords([seed, ...stream]);
  }

  /** Next u32. */
  u32(): number {
    this.s = (this.s + GOLDEN) >>> 0;
    return fmix32(this.s);
  }

  /** Uniform float in [0, 1) with 53 random bits. */
  float(): number {
    return (this.u32() * 2 ** 21 + (this.u32() >>> 11)) / 2 ** 53;
  }

  /** Uniform integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.float() * n);
  }

  /** In-place Fisher–Yates shuffle. */
  shuffle<T>(a: T[] | Int32Array): T[] | Int32Array {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.below(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }

  /** `k` distinct integers of [0, n), in random order. */
  sample(n: number, k: number): number[] {
    const all = Array.from({ length: n }, (_, i) => i);
    for (let i = 0; i < k; i++) {
      const j = i + this.below(n - i);
      const t = all[i];
      all[i] = all[j];
      all[j] = t;
    }
    return all.slice(0, k);
  }
}

/** A seeded permutation of 0..n-1. */
export function permutation(n: number, seed: number, ...stream: number[]): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  new Rng(seed, ...stream).shuffle(p);
  return p;
}
