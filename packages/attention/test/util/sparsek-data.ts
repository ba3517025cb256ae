/** Deterministic test data for the SPARSEK tests (independent of the forgetting-attention helpers). */
import { normals as saltedNormals } from './random.js';

/** The salt that keeps the SPARSEK streams apart from the forgetting-attention ones. */
const SALT = 12345;

/** Standard normals (Box–Muller) times `scale`. */
export function normals(n: number, seed: number, scale = 1): Float64Array {
  return saltedNormals(n, seed, scale, SALT);
}
