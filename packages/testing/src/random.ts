/**
 * The xorshift32 generator behind the deterministic test data of every package's suites.
 * Seeded by `seed` (and `salt`, for a separate family of streams); each call returns the next
 * state, an integer in [1, 2^32). Divide by 2^32 for a uniform in [0, 1).
 */
export function xorshift32(seed: number, salt = 0): () => number {
  let s = (seed * 2654435761 + salt) >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}
