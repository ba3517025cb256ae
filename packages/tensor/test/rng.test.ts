import { describe, expect, it } from 'vitest';
import { FoxgateError } from '../src/errors.js';
import { foldIn, RngKey, rngKey, split } from '../src/rng/key.js';
import { cos2piQ30, minusTwoLnQ26, normalQ24, radiusQ26, round24, sqrtQ26 } from '../src/rng/normal.js';
import { philox4x32, philoxRandom, philoxStream } from '../src/rng/philox.js';
import { mulhi32 } from '../src/rng/u32.js';

const hex = (a: ArrayLike<number>) => Array.from(a, (v) => v >>> 0);

/** Tiny deterministic LCG for test inputs (independent of the code under test). */
function lcg(seed: number): () => number {
  let s = BigInt(seed);
  return () => {
    s = (s * 6364136223846793005n + 1442695040888963407n) & 0xffffffffffffffffn;
    return Number(s >> 32n);
  };
}

/** float64 Box–Muller of the contract's words (the value the fixed-point code approximates). */
function boxMuller64(a: number, phi: number, odd: boolean): number {
  const u = ((a | 1) >>> 0) / 2 ** 32;
  const theta = (2 * Math.PI * phi) / 2 ** 32;
  return Math.sqrt(-2 * Math.log(u)) * (odd ? Math.sin(theta) : Math.cos(theta));
}

describe('philox4x32-10 known-answer vectors (Random123)', () => {
  it('counter 0, key 0', () => {
    expect(hex(philox4x32(0, 0, 0, 0, 0, 0))).toEqual([0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
  });
  it('all ones', () => {
    const f = 0xffffffff;
    expect(hex(philox4x32(f, f, f, f, f, f))).toEqual([0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]);
  });
  it('pi digits', () => {
    expect(hex(philox4x32(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0))).toEqual([
      0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1,
    ]);
  });
  it('mulhi32 equals the BigInt high word', () => {
    const next = lcg(7);
    const vals = [0, 1, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff, 0xd2511f53, 0xcd9e8d57];
    for (let i = 0; i < 2000; i++) vals.push(next());
    for (let i = 0; i < vals.length; i++) {
      const a = vals[i];
      const b = vals[(i * 7 + 3) % vals.length];
      expect(mulhi32(a, b)).toBe(Number((BigInt(a) * BigInt(b)) >> 32n));
    }
  });
});

describe('stream contract', () => {
  const key: [number, number] = [0x12345678, 0x9abcdef0];

  it('bits element i is word i mod 4 of block floor(i/4)', () => {
    const bits = philoxStream(key, 23);
    for (let i = 0; i < 23; i++) {
      expect(bits[i]).toBe(philox4x32(Math.floor(i / 4), 0, 0, 0, key[0], key[1])[i % 4]);
    }
  });

  it('a shorter stream is a prefix of a longer one (all kinds)', () => {
    for (const kind of ['bits', 'uniform', 'normal'] as const) {
      const dt = kind === 'bits' ? 'uint32' : 'float32';
      const long = philoxRandom(kind, key, 37, dt);
      const short = philoxRandom(kind, key, 7, dt);
      expect(Array.from(short)).toEqual(Array.from(long.subarray(0, 7)));
    }
  });

  it('uniform = (bits >>> 8)·2^-24, float64 identical to float32', () => {
    const bits = philoxStream(key, 1000);
    const u32 = philoxRandom('uniform', key, 1000, 'float32');
    const u64 = philoxRandom('uniform', key, 1000, 'float64');
    expect(u32).toBeInstanceOf(Float32Array);
    expect(u64).toBeInstanceOf(Float64Array);
    for (let i = 0; i < 1000; i++) {
      expect(u32[i]).toBe((bits[i] >>> 8) / 2 ** 24);
      expect(u64[i]).toBe(u32[i]);
    }
  });

  it('normal: pairs (cos, sin) from words (2p, 2p+1), float64 identical to float32', () => {
    const n = 20000;
    const bits = philoxStream(key, n);
    const z32 = philoxRandom('normal', key, n, 'float32');
    const z64 = philoxRandom('normal', key, n, 'float64');
    let maxErr = 0;
    for (let i = 0; i < n; i++) {
      const b = i - (i % 4);
      const p = (i % 4) >> 1;
      const ref = boxMuller64(bits[b + 2 * p], bits[b + 2 * p + 1], i % 2 === 1);
      maxErr = Math.max(maxErr, Math.abs(z32[i] - ref) / Math.max(1, Math.abs(ref)));
      expect(z64[i]).toBe(z32[i]);
      // at most 24 significant bits: exact in float32, on a 2^-24 grid
      const m = z32[i] * 2 ** 24;
      expect(Number.isInteger(m) && Math.abs(m) < 2 ** 31 && round24(Math.abs(m)) === Math.abs(m)).toBe(true);
    }
    expect(maxErr).toBeLessThan(1e-6);
  });

  it('fixed-point pieces match float64 math, including edge words', () => {
    const edges = [0, 1, 2, 3, 255, 0x10000, 0x3fffffff, 0x40000000, 0x40000001, 0x7fffffff, 0x80000000];
    edges.push(0x80000001, 0xbfffffff, 0xc0000000, 0xc0000001, 0xfff00000, 0xfffffffe, 0xffffffff);
    const next = lcg(11);
    for (let i = 0; i < 3000; i++) edges.push(next());
    for (const a of edges) {
      const R = -2 * Math.log(((a | 1) >>> 0) / 2 ** 32);
      expect(Math.abs(minusTwoLnQ26(a) / 2 ** 26 - R)).toBeLessThan(3e-8);
      const rq = minusTwoLnQ26(a);
      const s = sqrtQ26(rq);
      // exact floor square root of rq·2^26
      expect(BigInt(s) * BigInt(s) <= BigInt(rq) << 26n).toBe(true);
      expect(BigInt(s + 1) * BigInt(s + 1) > BigInt(rq) << 26n).toBe(true);
      expect(Math.abs(cos2piQ30(a) / 2 ** 30 - Math.cos((2 * Math.PI * a) / 2 ** 32))).toBeLessThan(3e-9);
    }
    for (const a of edges.slice(0, 40)) {
      for (const phi of edges.slice(0, 40)) {
        const z = normalQ24(radiusQ26(a), phi) / 2 ** 24;
        const ref = boxMuller64(a, phi, false);
        // u within 2^-12 of 1 has R quantised to 2^-26 → small absolute error in r near 0
        const tol = a >= 0xfff00000 ? 2e-4 : 1e-6;
        expect(Math.abs(z - ref) / Math.max(1, Math.abs(ref))).toBeLessThan(tol);
      }
    }
  });

  it('normal tails reach beyond ±6σ (the smallest radius word)', () => {
    const r = radiusQ26(0);
    expect(normalQ24(r, 0) / 2 ** 24).toBeCloseTo(Math.sqrt(64 * Math.LN2), 6);
    expect(normalQ24(r, 0x80000000) / 2 ** 24).toBeCloseTo(-Math.sqrt(64 * Math.LN2), 6);
    expect(normalQ24(r, 0) / 2 ** 24).toBeGreaterThan(6.6);
    // zero comes out as +0, never -0 (bit-identical with integer-first WGSL)
    expect(Object.is(normalQ24(0, 0x80000000), 0)).toBe(true);
  });

  it('rejects bad arguments with FoxgateError', () => {
    expect(() => philoxRandom('bits', [1, 2], 4, 'float32')).toThrow(/random: bits are uint32/);
    expect(() => philoxRandom('normal', [1, 2], 4, 'int32')).toThrow(/normal needs float32 or float64/);
    expect(() => philoxRandom('uniform', [1, 2], -1, 'float32')).toThrow(FoxgateError);
    expect(() => philoxRandom('uniform', [1, 2 ** 32], 4, 'float32')).toThrow(/key must be two uint32 words/);
  });
});

describe('distributions (1e6 samples)', () => {
  const n = 1_000_000;

  it('uniform: in [0,1), mean 1/2, variance 1/12', () => {
    const u = philoxRandom('uniform', rngKey(123).words, n, 'float32');
    let s = 0;
    let s2 = 0;
    let lo = 1;
    let hi = 0;
    for (const v of u) {
      s += v;
      s2 += v * v;
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    const mean = s / n;
    expect(lo).toBeGreaterThanOrEqual(0);
    expect(hi).toBeLessThan(1);
    expect(Math.abs(mean - 0.5)).toBeLessThan(5 * Math.sqrt(1 / 12 / n));
    expect(Math.abs(s2 / n - mean * mean - 1 / 12)).toBeLessThan(5 * Math.sqrt(1 / 180 / n));
  });

  it('normal: moments, CDF and tails within sampling error of N(0,1)', () => {
    const z = philoxRandom('normal', rngKey(2024).words, n, 'float64');
    let m1 = 0;
    for (const v of z) m1 += v;
    m1 /= n;
    let m2 = 0;
    let m3 = 0;
    let m4 = 0;
    for (const v of z) {
      const d = v - m1;
      m2 += d * d;
      m3 += d * d * d;
      m4 += d * d * d * d;
    }
    m2 /= n;
    m3 /= n;
    m4 /= n;
    // 5 standard errors: mean 1/√n, std 1/√(2n), skew √(6/n), excess kurtosis √(24/n)
    expect(Math.abs(m1)).toBeLessThan(5 / Math.sqrt(n));
    expect(Math.abs(Math.sqrt(m2) - 1)).toBeLessThan(5 / Math.sqrt(2 * n));
    expect(Math.abs(m3 / m2 ** 1.5)).toBeLessThan(5 * Math.sqrt(6 / n));
    expect(Math.abs(m4 / (m2 * m2) - 3)).toBeLessThan(5 * Math.sqrt(24 / n));
    // Φ at a few points (standard table values)
    const phi: [number, number][] = [
      [-3, 0.0013498980316301],
      [-2, 0.0227501319481792],
      [-1, 0.158655253931457],
      [0, 0.5],
      [0.5, 0.691462461274013],
      [1, 0.841344746068543],
      [2, 0.977249868051821],
      [3, 0.99865010196837],
    ];
    for (const [x, p] of phi) {
      let c = 0;
      for (const v of z) if (v < x) c++;
      expect(Math.abs(c / n - p)).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / n));
    }
    // P(|z| > 4) = 6.334e-5 → 63 expected; Poisson 5σ band
    let tail = 0;
    for (const v of z) if (Math.abs(v) > 4) tail++;
    expect(tail).toBeGreaterThan(63 - 5 * 8);
    expect(tail).toBeLessThan(63 + 5 * 8);
  });
});

describe('keys', () => {
  it('rngKey maps seeds to (low, high) 32-bit words', () => {
    expect(rngKey(42).words).toEqual([42, 0]);
    expect(rngKey(2 ** 40 + 5).words).toEqual([5, 256]);
    expect(rngKey(2n ** 64n - 1n).words).toEqual([0xffffffff, 0xffffffff]);
    expect(rngKey(-1).words).toEqual([0xffffffff, 0xffffffff]);
    expect(rngKey(0x1234567890abcdefn).words).toEqual([0x90abcdef, 0x12345678]);
    expect(Object.isFrozen(rngKey(1))).toBe(true);
    expect(() => rngKey(1.5)).toThrow(/rngKey: seed must be an integer/);
    expect(() => rngKey(Number.NaN)).toThrow(FoxgateError);
    expect(() => rngKey(2n ** 64n)).toThrow(/does not fit in 64 bits/);
    expect(() => new RngKey(-1, 0)).toThrow(/uint32/);
  });

  it('split: deterministic, distinct, prefix-stable, from the split counter domain', () => {
    const k = rngKey(42);
    const a = split(k, 4);
    const b = split(k, 4);
    expect(a.map((x) => x.words)).toEqual(b.map((x) => x.words));
    expect(split(k).map((x) => x.words)).toEqual(a.slice(0, 2).map((x) => x.words));
    const all = new Set([k, ...a].map(String));
    expect(all.size).toBe(5);
    const w = philox4x32(1, 0, 0xffffffff, 0xffffffff, 42, 0);
    expect(a[1].words).toEqual([w[0], w[1]]);
    // regression literals
    expect(a.slice(0, 2).map((x) => x.words)).toEqual([
      [0xa60d816e, 0x39046177],
      [0xf1dcfe03, 0x51d2236f],
    ]);
    // split of different parents differ; [k0,k1] tuples work as keys
    expect(split([42, 0])[0].words).toEqual(a[0].words);
    expect(split(rngKey(43))[0].words).not.toEqual(a[0].words);
    expect(() => split(k, 0)).toThrow(/split: n must be/);
    expect(() => split([1, -2] as unknown as [number, number])).toThrow(/split: expected an RngKey/);
  });

  it('foldIn: deterministic, distinct per data, distinct from split', () => {
    const k = rngKey(7);
    const seen = new Set<string>();
    for (const d of [0, 1, 2, 3, 1000, 2 ** 32, 2 ** 32 + 1, 2 ** 53 - 1]) {
      const f = foldIn(k, d);
      expect(f.words).toEqual(foldIn(k, d).words);
      seen.add(String(f));
    }
    expect(seen.size).toBe(8);
    expect(foldIn(k, 0).words).not.toEqual(split(k)[0].words);
    expect(foldIn(rngKey(42), 7).words).toEqual([0xc637ca11, 0xa31edb76]);
    expect(() => foldIn(k, -1)).toThrow(/foldIn: data must be a non-negative integer/);
    expect(() => foldIn(k, 0.5)).toThrow(FoxgateError);
  });
});

describe('regression vectors of rngKey(42)', () => {
  const key = rngKey(42).words;
  it('bits', () => {
    expect(Array.from(philoxRandom('bits', key, 8, 'uint32'))).toEqual([
      0x9ceaf053, 0x77f5493b, 0x12bf50ad, 0x5742b3d7, 0xfcdb2127, 0x53ba6cfd, 0x838f5a6e, 0x744e06fb,
    ]);
  });
  it('uniform (float32, as multiples of 2^-24)', () => {
    const u = philoxRandom('uniform', key, 8, 'float32');
    expect(Array.from(u, (v) => v * 2 ** 24)).toEqual([10283760, 7861577, 1228624, 5718707, 16571169, 5487212, 8621914, 7622150]);
  });
  it('normal (float32, as multiples of 2^-24)', () => {
    const z = philoxRandom('normal', key, 8, 'float32');
    expect(Array.from(z, (v) => v * 2 ** 24)).toEqual([-16277083, 3255097, -20730276, 32278134, -1227781, 2334339, -18566758, 5480830]);
    // ≈ -0.97019, 0.19402, -1.23562, 1.92393, -0.07318, 0.13914, -1.10667, 0.32668
    expect(z[0]).toBeCloseTo(-0.970189750194549, 7);
  });
});
