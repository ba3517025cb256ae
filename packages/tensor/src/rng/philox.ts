/**
 * Philox-4x32-10 counter-based random numbers (Salmon, Moraes, Dror, Shaw, "Parallel random
 * numbers: as easy as 1, 2, 3", SC 2011), and the stream contract every backend reproduces
 * bit for bit.
 *
 * ## The block function
 * `philox4x32(c, k)`: counter c = (c0,c1,c2,c3), key k = (k0,k1), all u32. Ten rounds of
 *   (hi0, lo0) = 0xD2511F53 · c0   (64-bit product)       (hi1, lo1) = 0xCD9E8D57 · c2
 *   c = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
 * with the key bumped by the Weyl increments k0 += 0x9E3779B9, k1 += 0xBB67AE85 (mod 2^32)
 * between rounds (round 1 uses the key as given). Output: the four words of c.
 *
 * ## Streams (THE contract; the WGSL kernels must match it exactly)
 * A stream is defined by a key (k0,k1). Element i (0 ≤ i < 2^34) reads block
 *   B = philox4x32(counter = (⌊i/4⌋, 0, 0, 0), key = (k0,k1)),   j = i mod 4.
 * - `bits`    (uint32):  B[j].
 * - `uniform` (float32): (B[j] >>> 8) · 2^-24, in [0, 1), exact in float32.
 *             (float64): the same value widened (24 random bits). Chosen so that a float64
 *             reference run sees exactly the numbers of the float32 run with the same key.
 * - `normal`  (float32): Box–Muller in fixed-point integers (see `normal.ts`): with
 *             p = j >> 1 (pair), a = B[2p] (radius word), phi = B[2p+1] (angle word),
 *             r = radiusQ26(a); element i is normalQ24(r, phi)·2^-24 for even j (r·cos θ) and
 *             normalQ24(r, (phi − 2^30) mod 2^32)·2^-24 for odd j (r·sin θ). The value has at
 *             most 24 significant bits, |z| ≤ 6.66, and is bit-identical on every backend.
 *             (float64): the same value widened.
 * Porting: `mulhi32` (u32.ts, 16-bit halves) gives the high word; the low word is a plain u32
 * multiply (`Math.imul` here). Normal helpers are in `normal.ts` with their own porting notes.
 * Key derivation (`key.ts`) uses counters with c2 = 0xFFFFFFFF, which streams never use, so
 * derived keys never coincide with stream blocks of their parent.
 */
import type { RandomKind } from '../backend.js';
import type { DType, TypedArray } from '../dtype.js';
import { fail } from '../errors.js';
import { normalQ24, radiusQ26 } from './normal.js';
import { isU32, mulhi32 } from './u32.js';

export const PHILOX_M0 = 0xd2511f53;
export const PHILOX_M1 = 0xcd9e8d57;
export const PHILOX_W0 = 0x9e3779b9;
export const PHILOX_W1 = 0xbb67ae85;

/** Largest stream length: the block index ⌊i/4⌋ must fit in the u32 counter word c0. */
export const MAX_STREAM_SIZE = 2 ** 34;

/** 2^-24, exact in float32 and float64. */
const TWO_M24 = 1 / 16777216;

/**
 * Philox-4x32-10 of counter (c0..c3) under key (k0,k1); writes the four output words to `out`
 * (allocated when omitted) and returns it.
 */
export function philox4x32(
  c0: number,
  c1: number,
  c2: number,
  c3: number,
  k0: number,
  k1: number,
  out: Uint32Array = new Uint32Array(4),
): Uint32Array {
  let x0 = c0 >>> 0;
  let x1 = c1 >>> 0;
  let x2 = c2 >>> 0;
  let x3 = c3 >>> 0;
  let a = k0 >>> 0;
  let b = k1 >>> 0;
  for (let round = 0; round < 10; round++) {
    if (round > 0) {
      a = (a + PHILOX_W0) >>> 0;
      b = (b + PHILOX_W1) >>> 0;
    }
    const hi0 = mulhi32(PHILOX_M0, x0);
    const lo0 = Math.imul(PHILOX_M0, x0) >>> 0;
    const hi1 = mulhi32(PHILOX_M1, x2);
    const lo1 = Math.imul(PHILOX_M1, x2) >>> 0;
    x0 = (hi1 ^ x1 ^ a) >>> 0;
    x1 = lo1;
    x2 = (hi0 ^ x3 ^ b) >>> 0;
    x3 = lo0;
  }
  out[0] = x0;
  out[1] = x1;
  out[2] = x2;
  out[3] = x3;
  return out;
}

function checkArgs(kind: RandomKind, key: readonly [number, number], size: number, dtype: DType): void {
  if (!Array.isArray(key) || key.length !== 2 || !isU32(key[0]) || !isU32(key[1])) {
    fail('random', `key must be two uint32 words, got ${JSON.stringify(key)}`);
  }
  if (!Number.isInteger(size) || size < 0 || size > MAX_STREAM_SIZE) {
    fail('random', `size must be an integer in [0, 2^34], got ${size}`);
  }
  if (kind === 'bits') {
    if (dtype !== 'uint32') fail('random', `bits are uint32, got dtype ${dtype}`);
  } else if (kind === 'uniform' || kind === 'normal') {
    if (dtype !== 'float32' && dtype !== 'float64') fail('random', `${kind} needs float32 or float64, got dtype ${dtype}`);
  } else {
    fail('random', `unknown kind ${JSON.stringify(kind)} (expected uniform, normal or bits)`);
  }
}

/** The first `size` words of the `bits` stream of `key`. */
export function philoxStream(key: readonly [number, number], size: number): Uint32Array {
  return philoxRandom('bits', key, size, 'uint32') as Uint32Array;
}

/**
 * The first `size` elements of the `kind` stream of `key` (see the contract above) as a
 * `Uint32Array` (bits), `Float32Array` or `Float64Array`. What the CPU backend's `random` runs.
 */
export function philoxRandom(kind: RandomKind, key: readonly [number, number], size: number, dtype: DType): TypedArray {
  checkArgs(kind, key, size, dtype);
  const [k0, k1] = key;
  const out: Uint32Array | Float32Array | Float64Array =
    dtype === 'uint32' ? new Uint32Array(size) : dtype === 'float32' ? new Float32Array(size) : new Float64Array(size);
  const w = new Uint32Array(4);
  const blocks = Math.ceil(size / 4);
  for (let blk = 0; blk < blocks; blk++) {
    philox4x32(blk, 0, 0, 0, k0, k1, w);
    const base = blk * 4;
    const n = Math.min(4, size - base);
    if (kind === 'bits') {
      for (let j = 0; j < n; j++) out[base + j] = w[j];
    } else if (kind === 'uniform') {
      for (let j = 0; j < n; j++) out[base + j] = (w[j] >>> 8) * TWO_M24;
    } else {
      for (let p = 0; 2 * p < n; p++) {
        const r = radiusQ26(w[2 * p]);
        const phi = w[2 * p + 1];
        out[base + 2 * p] = normalQ24(r, phi) * TWO_M24;
        if (2 * p + 1 < n) out[base + 2 * p + 1] = normalQ24(r, (phi - 0x40000000) >>> 0) * TWO_M24;
      }
    }
  }
  return out;
}
