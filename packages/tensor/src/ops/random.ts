import type { RandomKind } from '../backend.js';
import type { DType } from '../dtype.js';
import { fail } from '../errors.js';
import { getBackend } from '../registry.js';
import { checkShape, sizeOf } from '../shape.js';
import type { Tensor } from '../tensor.js';
import type { CreateOptions } from './creation.js';
import { add, cast, floor, lt, mul } from './elementwise.js';
import { release, wrap } from './util.js';

/** A key: an object with two uint32 words (`RngKey`) or the pair itself. */
export type KeyLike = { readonly k0: number; readonly k1: number } | readonly [number, number];

function words(op: string, key: KeyLike): [number, number] {
  const w: [number, number] = Array.isArray(key) ? [key[0], key[1]] : [(key as { k0: number }).k0, (key as { k1: number }).k1];
  if (!w.every((v) => Number.isInteger(v) && v >= 0 && v <= 0xffffffff)) {
    fail(op, `key must be two uint32 words (use rngKey(seed)), got ${JSON.stringify(key)}`);
  }
  return w;
}

function source(op: string, kind: RandomKind, key: KeyLike, shape: readonly number[], dtype: DType, opts: CreateOptions): Tensor {
  const s = checkShape(op, shape);
  const b = getBackend(opts.backend);
  return wrap(b, b.random(kind, words(op, key), sizeOf(s), dtype), dtype, s);
}

function floatDType(op: string, opts: CreateOptions): DType {
  const d = opts.dtype ?? 'float32';
  if (d !== 'float32' && d !== 'float64') fail(op, `dtype must be float32 or float64, got ${d}`);
  return d;
}

/** Uniform in `[low, high)`; the same key gives the same numbers on every backend. */
export function randomUniform(key: KeyLike, shape: readonly number[], opts: CreateOptions & { low?: number; high?: number } = {}): Tensor {
  const u = source('randomUniform', 'uniform', key, shape, floatDType('randomUniform', opts), opts);
  const low = opts.low ?? 0;
  const high = opts.high ?? 1;
  if (low === 0 && high === 1) return u;
  const scaled = mul(u, high - low);
  const out = add(scaled, low);
  release(u, scaled);
  return out;
}

/** Normal with `mean` and `std`. */
export function randomNormal(key: KeyLike, shape: readonly number[], opts: CreateOptions & { mean?: number; std?: number } = {}): Tensor {
  const z = source('randomNormal', 'normal', key, shape, floatDType('randomNormal', opts), opts);
  const mean = opts.mean ?? 0;
  const std = opts.std ?? 1;
  if (mean === 0 && std === 1) return z;
  const scaled = mul(z, std);
  const out = add(scaled, mean);
  release(z, scaled);
  return out;
}

/** Raw uint32 words of the stream. */
export function randomBits(key: KeyLike, shape: readonly number[], opts: Omit<CreateOptions, 'dtype'> = {}): Tensor {
  return source('randomBits', 'bits', key, shape, 'uint32', opts);
}

/** bool tensor, true with probability `p` (a number in [0, 1]). */
export function bernoulli(key: KeyLike, p: number, shape: readonly number[], opts: Omit<CreateOptions, 'dtype'> = {}): Tensor {
  if (!(p >= 0 && p <= 1)) fail('bernoulli', `p must be in [0, 1], got ${p}`);
  const u = source('bernoulli', 'uniform', key, shape, 'float32', opts);
  const out = lt(u, p);
  release(u);
  return out;
}

/** Integers uniform in `[low, high)` (int32). */
export function randint(
  key: KeyLike,
  low: number,
  high: number,
  shape: readonly number[],
  opts: Omit<CreateOptions, 'dtype'> = {},
): Tensor {
  if (!Number.isInteger(low) || !Number.isInteger(high) || high <= low || high - low > 2 ** 24) {
    fail('randint', `needs integers low < high with high - low <= 2^24, got [${low}, ${high})`);
  }
  const u = source('randint', 'uniform', key, shape, 'float32', opts);
  const scaled = mul(u, high - low);
  const fl = floor(scaled);
  const ints = cast(fl, 'int32');
  const out = add(ints, low);
  release(u, scaled, fl, ints);
  return out;
}
