/** Deterministic random test data (xorshift32), shared by the forgetting-attention and SPARSEK tests. */
import { xorshift32 } from '@foxgate/testing';

/**
 * Uniforms in (0, 1) from xorshift32, deterministic in `seed`; a different `salt` gives another
 * family of streams (the SPARSEK tests use one so their data is independent of the others').
 */
export function xorshift(seed: number, salt = 0): () => number {
  const next = xorshift32(seed, salt);
  return () => (next() + 0.5) / 4294967296;
}

/** `n` standard normals (Box–Muller) times `scale`, from the stream `xorshift(seed, salt)`. */
export function normals(n: number, seed: number, scale = 1, salt = 0): Float64Array {
  const u = xorshift(seed, salt);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = scale * Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return out;
}
