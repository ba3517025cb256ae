/**
 * Exact 32-bit unsigned integer helpers shared by the Philox generator and the fixed-point normal
 * sampler. Every function maps u32 inputs to a u32 result using only operations that WGSL's `u32`
 * type has (wrapping add/mul, shifts, masks, comparisons), so a WGSL port is line-by-line.
 */

/**
 * High 32 bits of the 64-bit product `a·b` of two u32 values. Built from 16-bit halves so that
 * each partial product fits in 32 bits (exact in a JS double and in a WGSL u32); no partial sum
 * exceeds the true high word, so nothing wraps.
 */
export function mulhi32(a: number, b: number): number {
  const a0 = a & 0xffff;
  const a1 = a >>> 16;
  const b0 = b & 0xffff;
  const b1 = b >>> 16;
  const p00 = a0 * b0;
  const p01 = a0 * b1;
  const p10 = a1 * b0;
  const p11 = a1 * b1;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  return (p11 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16)) >>> 0;
}

/** Low 32 bits of `a·b` (WGSL: plain `a * b` on u32). */
export function mullo32(a: number, b: number): number {
  return Math.imul(a, b) >>> 0;
}

/** True when `v` is an integer in [0, 2^32). */
export function isU32(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}
