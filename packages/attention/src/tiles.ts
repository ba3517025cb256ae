/**
 * Tile geometry shared by every attention implementation: query tiles of `bq` rows and key tiles
 * of `bk` columns aligned to key position 0, causal limits with queries aligned to the end of the
 * keys, and the ACP bounds (first kept key tile per query tile).
 */

/**
 * The ACP grid: pruning decisions are made per 64-query × 64-key tile, by every implementation
 * (reference, CPU, WGSL), so they all prune the same pairs and report the same `stats`. It is not
 * a kernel tile size (the WGSL kernels use their own tiles and apply these bounds at their
 * granularity). A sequence of at most 64 positions has a single tile per row and prunes nothing.
 */
export const ACP_TILE = 64;

export interface FoxDims {
  B: number;
  /** Queries. */
  Tq: number;
  /** Keys (≥ Tq); query i sits at key position `i + Tk − Tq`. */
  Tk: number;
  H: number;
  D: number;
}

/** Last key tile a query tile needs (causal): the tile holding its last query's position. */
export function lastKeyBlock(qb: number, dims: FoxDims, bq: number, bk: number): number {
  const lastPos = Math.min((qb + 1) * bq, dims.Tq) - 1 + (dims.Tk - dims.Tq);
  return Math.floor(lastPos / bk);
}

/** The key tile holding the first query of tile `qb` (never pruned by ACP). */
export function diagKeyBlock(qb: number, dims: FoxDims, bq: number, bk: number): number {
  return Math.floor((qb * bq + dims.Tk - dims.Tq) / bk);
}

/**
 * ACP bounds for one (b, h): the first key tile each query tile keeps. `lam(t)` reads Λ at key
 * position t (non-increasing in t when every log forget gate is ≤ 0). A key tile is pruned for
 * a query tile when even its largest `Λ_i − Λ_j` (first query, last key of the tile) is below
 * `delta`; those tiles form a prefix whose end only moves right as the query tile moves right,
 * so one monotone two-pointer scan finds them all. The tile holding the tile's first query is
 * always kept. `delta = −∞` (or NaN) prunes nothing.
 */
export function acpFirstBlocks(lam: (t: number) => number, dims: FoxDims, bq: number, bk: number, delta: number, out: Int32Array): void {
  const nqb = out.length;
  const off = dims.Tk - dims.Tq;
  let kb = 0;
  for (let qb = 0; qb < nqb; qb++) {
    const p0 = qb * bq + off;
    const diag = Math.floor(p0 / bk);
    const lq = lam(p0);
    while (kb < diag && lq - lam(Math.min((kb + 1) * bk, dims.Tk) - 1) < delta) kb++;
    out[qb] = Math.min(kb, diag);
  }
}

/**
 * The first key tile a query tile needs under a sliding window (`window`: positions
 * `(p − window, p]`; null: 0): the tile holding the window start of the tile's first query.
 */
export function windowKeyBlock(qb: number, dims: FoxDims, bq: number, bk: number, window: number | null): number {
  if (window === null) return 0;
  return Math.floor(Math.max(0, qb * bq + dims.Tk - dims.Tq - window + 1) / bk);
}

/** Number of query tiles. */
export function numBlocks(n: number, b: number): number {
  return Math.ceil(n / b);
}

/**
 * Tiles a causal kernel visits for one (b, h) without pruning; with a sliding `window`, only
 * those from each query tile's `windowKeyBlock` on (the earlier ones hold no pair it attends to).
 */
export function causalBlockCount(dims: FoxDims, bq: number, bk: number, window: number | null = null): number {
  let n = 0;
  const nqb = numBlocks(dims.Tq, bq);
  for (let qb = 0; qb < nqb; qb++) n += lastKeyBlock(qb, dims, bq, bk) + 1 - windowKeyBlock(qb, dims, bq, bk, window);
  return n;
}
