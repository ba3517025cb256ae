/**
 * 16-bit float decoding by bit manipulation (no float arithmetic, so NaN payloads and signed
 * zeros survive): IEEE binary16 (F16) and bfloat16 (BF16) → float32 bit patterns.
 */

/** float32 bits of the binary16 value `h` (1 sign, 5 exponent (bias 15), 10 mantissa bits). */
export function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0; // ±inf, NaN (payload kept)
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0; // 112 = 127 − 15
  if (mant === 0) return sign >>> 0; // ±0
  // subnormal: mant·2^-24; normalise so that the leading 1 reaches bit 10
  let e = 1;
  let m = mant;
  while ((m & 0x400) === 0) {
    m <<= 1;
    e--;
  }
  return (sign | ((e + 112) << 23) | ((m & 0x3ff) << 13)) >>> 0;
}

/** float32 bits of the bfloat16 value `h` (the top half of a float32). */
export function bf16BitsToF32Bits(h: number): number {
  return (h << 16) >>> 0;
}

/** Decodes 16-bit words (F16 or BF16) into a new Float32Array. */
export function decodeHalves(words: Uint16Array, kind: 'F16' | 'BF16'): Float32Array {
  const out = new Float32Array(words.length);
  const bits = new Uint32Array(out.buffer);
  if (kind === 'BF16') {
    for (let i = 0; i < words.length; i++) bits[i] = words[i] << 16;
  } else {
    for (let i = 0; i < words.length; i++) bits[i] = f16BitsToF32Bits(words[i]);
  }
  return out;
}

/** The number a binary16 bit pattern stands for. */
export function f16ToNumber(h: number): number {
  const b = new Uint32Array([f16BitsToF32Bits(h)]);
  return new Float32Array(b.buffer)[0];
}
