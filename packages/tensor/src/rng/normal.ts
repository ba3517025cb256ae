/**
 * Standard normal samples from two uint32 words, in exact fixed-point integer arithmetic.
 *
 * Why integers: the CPU (JS) and WebGPU (WGSL) backends must give bit-identical normals, but
 * `log`, `cos` and `sqrt` are not correctly rounded on GPUs (and differ between JS engines in
 * principle), and WGSL compilers may contract `a*b+c` into an fma. So the whole Box–Muller
 * transform is done on u32 values with truncating fixed-point arithmetic, and the result is
 * rounded (in integers) to 24 significant bits before a single, therefore exact, conversion to
 * float. Every function below is a pure function of u32 inputs.
 *
 * The transform, for words `a` (radius) and `phi` (angle):
 *   u   = (a | 1)·2^-32                    ∈ [2^-32, 1 − 2^-32]  (odd 32-bit values: midpoints)
 *   R   = −2·ln u = 2ln2·(−log2 u)          Q6.26   (`minusTwoLnQ26`)
 *   r   = √R                                Q.26    (`sqrtQ26`, r < 6.67, |z| ≤ 6.66σ)
 *   c   = cos(2π·phi·2^-32)                 Q2.30   (`cos2piQ30`, signed)
 *   z   = round24(⌊r·|c|·2^-32⌋) with the sign of c, as an integer z·2^24   (`normalQ24`)
 * `(a, phi)` gives `z = r·cos θ` and `(a, phi − 2^30 mod 2^32)` gives `r·sin θ`, the Box–Muller
 * pair. Fixed-point notation: Qm.n is an unsigned u32 holding value·2^n with m integer bits.
 *
 * Accuracy vs float64 Box–Muller on the same words: ≤ 1.3e-7·max(1,|z|) (float32 rounding);
 * only for a ≥ 0xFFF00000 (u within 2^-12 of 1, |z| < 0.05) does the 2^-26 quantisation of R
 * raise the absolute error of r up to ~1e-4 (worst at a = 0xFFFFFFFF).
 *
 * Porting notes (WGSL): all values are `u32` (`cos2piQ30` returns a sign and a magnitude; JS
 * uses a signed number for brevity). JS `>>> 0` only re-reads a value as unsigned: drop it in
 * WGSL. `Math.clz32` is `countLeadingZeros`; `mulhi32`/`mullo32` are in `u32.ts` (`mullo32` is
 * plain `a * b` on u32). Loops have fixed trip counts (26 and 29). The final float is
 * `f32(i32(±m)) * 5.9604644775390625e-8` (2^-24): `m` has at most 24 significant bits, so the
 * conversion and the power-of-two scaling are exact; `0 − 0` is +0 in both languages.
 */
import { mulhi32, mullo32 } from './u32.js';

/** 2·ln 2 in Q1.31 (round(2·ln2·2^31)). */
const TWO_LN2_Q31 = 2977044472;

/**
 * Fractional part of log2(y) for y = Y·2^-31 ∈ [1, 2) (Y ∈ [2^31, 2^32)), as 26 bits
 * (Q0.26), by repeated squaring: each squaring doubles the logarithm, and y² ≥ 2 means the next
 * bit is 1 (then y²/2 continues). Truncation keeps the error below 2^-25.
 */
export function log2FracQ26(y: number): number {
  let f = 0;
  for (let k = 0; k < 26; k++) {
    const h = mulhi32(y, y); // y²·2^31 / 2 (Q1.31 of y²/2)
    if (h >= 0x80000000) {
      f = (f << 1) | 1;
      y = h;
    } else {
      f = f << 1;
      y = ((h << 1) | (mullo32(y, y) >>> 31)) >>> 0;
    }
  }
  return f;
}

/** R = −2·ln(u) in Q6.26 for u = (a | 1)·2^-32; R ∈ (0, 44.37]. */
export function minusTwoLnQ26(a: number): number {
  const n = (a | 1) >>> 0;
  const lz = Math.clz32(n);
  // log2(n) = (31 − lz) + log2(mantissa), mantissa = n·2^lz in Q1.31; −log2(u) = 32 − log2(n).
  const frac = log2FracQ26((n << lz) >>> 0);
  const l = (((lz + 1) << 26) >>> 0) - frac; // −log2(u) in Q6.26, in [1, 2^31]
  // R = l·(2ln2) : Q6.26 × Q1.31 → shift right by 31.
  return ((mulhi32(l, TWO_LN2_Q31) << 1) | (mullo32(l, TWO_LN2_Q31) >>> 31)) >>> 0;
}

/**
 * ⌊√(R·2^26)⌋ for R in Q6.26, i.e. √R in Q.26 (< 2^29). Digit-by-digit square root of the
 * 58-bit value R·2^26 = (R >> 6)·2^32 + (R << 26 mod 2^32), two bits per step from the top:
 * 13 pairs from the high word, 16 from the low word. The remainder stays ≤ 2·root < 2^30 and
 * the shifted remainder below 2^32, so everything fits in u32.
 */
export function sqrtQ26(rq: number): number {
  const hi = rq >>> 6;
  const lo = (rq << 26) >>> 0;
  let rem = 0;
  let root = 0;
  for (let k = 0; k < 29; k++) {
    const pair = k < 13 ? (hi >>> (24 - 2 * k)) & 3 : (lo >>> (30 - 2 * (k - 13))) & 3;
    rem = ((rem << 2) | pair) >>> 0;
    const trial = ((root << 2) | 1) >>> 0;
    root = (root << 1) >>> 0;
    if (rem >= trial) {
      rem = rem - trial;
      root = (root | 1) >>> 0;
    }
  }
  return root;
}

/**
 * cos(π·t/2) in Q2.30 for t = T·2^-32 ∈ [0, 1/2]: Taylor series to t^12 (truncation error
 * < 2^-40), coefficients round((π/2)^2k/(2k)!·2^30), Horner in s = t² with alternating signs.
 * With s ≤ 1/4 every partial value stays positive, so unsigned arithmetic is exact.
 */
export function cosQuarterQ30(t: number): number {
  const s = mulhi32(t, t); // t² in Q0.32
  let v = 506; // (π/2)^12/12!
  v = 27060 - mulhi32(s, v); // (π/2)^10/10!
  v = 987048 - mulhi32(s, v); // (π/2)^8/8!
  v = 22401992 - mulhi32(s, v); // (π/2)^6/6!
  v = 272375560 - mulhi32(s, v); // (π/2)^4/4!
  v = 1324675879 - mulhi32(s, v); // (π/2)^2/2!
  return 1073741824 - mulhi32(s, v); // 1
}

/**
 * sin(π·t/2) in Q2.30 for t = T·2^-32 ∈ [0, 1/2]: t·P(t²), Taylor to t^11 (error < 2^-36),
 * coefficients round((π/2)^(2k+1)/(2k+1)!·2^30).
 */
export function sinQuarterQ30(t: number): number {
  const s = mulhi32(t, t);
  let v = 3864; // (π/2)^11/11!
  v = 172272 - mulhi32(s, v); // (π/2)^9/9!
  v = 5026995 - mulhi32(s, v); // (π/2)^7/7!
  v = 85569306 - mulhi32(s, v); // (π/2)^5/5!
  v = 693598668 - mulhi32(s, v); // (π/2)^3/3!
  v = 1686629713 - mulhi32(s, v); // π/2
  return mulhi32(t, v);
}

/**
 * cos(2π·phi·2^-32) in Q2.30, as a signed number in [−2^30, 2^30]. The top two bits pick the
 * quadrant; within it t ∈ [0,1) is folded to [0, 1/2] (cos(πt/2) = sin(π(1−t)/2)).
 */
export function cos2piQ30(phi: number): number {
  const q = phi >>> 30;
  const t = (phi << 2) >>> 0;
  const fold = t > 0x80000000;
  const u = fold ? (0x100000000 - t) >>> 0 : t; // WGSL: 0u - t
  const wantCos = (q & 1) === 0; // quadrants 0, 2: ±cos(πt/2); 1, 3: ∓sin(πt/2)
  const mag = wantCos !== fold ? cosQuarterQ30(u) : sinQuarterQ30(u);
  return q === 1 || q === 2 ? 0 - mag : mag;
}

/** Rounds a magnitude below 2^31 to 24 significant bits (nearest, ties away from zero). */
export function round24(m: number): number {
  const lz = Math.clz32(m);
  if (lz >= 8) return m;
  const s = 8 - lz;
  return (((m + (1 << (s - 1))) >>> s) << s) >>> 0;
}

/** Box–Muller radius √(−2 ln u) in Q.26 from the radius word `a`. */
export function radiusQ26(a: number): number {
  return sqrtQ26(minusTwoLnQ26(a));
}

/**
 * z·2^24 (an integer with ≤ 24 significant bits) of the normal `r·cos(2π·phi·2^-32)`, `r` from
 * `radiusQ26`. The float result is exactly `normalQ24(r, phi) · 2^-24`.
 */
export function normalQ24(r: number, phi: number): number {
  const c = cos2piQ30(phi);
  const m = round24(mulhi32(r, c < 0 ? 0 - c : c)); // Q.26 × Q2.30 >> 32 = Q.24
  return c < 0 ? 0 - m : m;
}
