/**
 * RNG keys: immutable pairs of uint32 words naming a Philox stream (see `philox.ts`).
 *
 * - `rngKey(seed)`: the key (low 32 bits, high 32 bits) of the seed read as an unsigned 64-bit
 *   integer (numbers must be safe integers, bigints in [−2^63, 2^64); negative seeds wrap as
 *   two's complement). No hashing: Philox mixes the key itself.
 * - `split(key, n)`: n child keys; child j = words (0, 1) of
 *   philox4x32(counter = (j, 0, 0xFFFFFFFF, 0xFFFFFFFF), key).
 * - `foldIn(key, data)`: a key derived from `key` and an integer (e.g. a step or layer index):
 *   words (0, 1) of philox4x32(counter = (data mod 2^32, ⌊data / 2^32⌋, 0xFFFFFFFF, 0xFFFFFFFE), key).
 * Streams only use counters (b, 0, 0, 0), so derivation blocks (c2 = 0xFFFFFFFF) never coincide
 * with a stream block of the same key, and `split` and `foldIn` never share a counter (c3).
 * Derivation is deterministic and backend-independent (pure JS integer math).
 */
import { fail } from '../errors.js';
import { philox4x32 } from './philox.js';
import { isU32 } from './u32.js';

export class RngKey {
  readonly k0: number;
  readonly k1: number;

  constructor(k0: number, k1: number) {
    if (!isU32(k0) || !isU32(k1)) fail('RngKey', `key words must be uint32 integers, got (${k0}, ${k1})`);
    this.k0 = k0;
    this.k1 = k1;
    Object.freeze(this);
  }

  /** The pair `[k0, k1]` the backends' `random` takes. */
  get words(): [number, number] {
    return [this.k0, this.k1];
  }

  toString(): string {
    const hex = (v: number) => v.toString(16).padStart(8, '0');
    return `RngKey(0x${hex(this.k0)}, 0x${hex(this.k1)})`;
  }
}

/** A key object or its two words. */
export type RngKeyLike = RngKey | { readonly k0: number; readonly k1: number } | readonly [number, number];

function keyWords(op: string, key: RngKeyLike): [number, number] {
  const w: [unknown, unknown] = Array.isArray(key)
    ? [key[0], key[1]]
    : key !== null && typeof key === 'object'
      ? [(key as RngKey).k0, (key as RngKey).k1]
      : [undefined, undefined];
  if ((Array.isArray(key) && key.length !== 2) || !isU32(w[0]) || !isU32(w[1])) {
    fail(op, `expected an RngKey or two uint32 words (make one with rngKey(seed)), got ${String(key)}`);
  }
  return w as [number, number];
}

/** The key of an integer seed (number up to ±2^53, or a 64-bit bigint). */
export function rngKey(seed: number | bigint): RngKey {
  let v: bigint;
  if (typeof seed === 'bigint') {
    if (seed < -(2n ** 63n) || seed >= 2n ** 64n) fail('rngKey', `seed ${seed} does not fit in 64 bits`);
    v = seed;
  } else if (typeof seed === 'number' && Number.isSafeInteger(seed)) {
    v = BigInt(seed);
  } else {
    fail('rngKey', `seed must be an integer (|seed| < 2^53) or a bigint, got ${String(seed)}`);
  }
  const u = BigInt.asUintN(64, v);
  return new RngKey(Number(u & 0xffffffffn), Number(u >> 32n));
}

/** `n` independent child keys of `key` (default 2). */
export function split(key: RngKeyLike, n = 2): RngKey[] {
  const [k0, k1] = keyWords('split', key);
  if (!Number.isInteger(n) || n < 1 || n > 0xffffffff) fail('split', `n must be an integer in [1, 2^32), got ${n}`);
  const w = new Uint32Array(4);
  const out: RngKey[] = [];
  for (let j = 0; j < n; j++) {
    philox4x32(j, 0, 0xffffffff, 0xffffffff, k0, k1, w);
    out.push(new RngKey(w[0], w[1]));
  }
  return out;
}

/** Alias of `split` for packages that also export a tensor `split`. */
export const splitKey = split;

/** A key derived from `key` and a non-negative integer `data` (< 2^53). */
export function foldIn(key: RngKeyLike, data: number): RngKey {
  const [k0, k1] = keyWords('foldIn', key);
  if (!Number.isSafeInteger(data) || data < 0) fail('foldIn', `data must be a non-negative integer below 2^53, got ${data}`);
  const lo = data % 0x100000000;
  const hi = Math.floor(data / 0x100000000);
  const w = philox4x32(lo, hi, 0xffffffff, 0xfffffffe, k0, k1);
  return new RngKey(w[0], w[1]);
}
