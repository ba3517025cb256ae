/**
 * The SPARSEK projection of one row on the host, in float64:
 * `p = argmin ‖p − z‖²` subject to `0 ≤ p ≤ 1`, `Σp = k`, whose solution is `p = clip(z − τ, 0, 1)`
 * with τ the root of the non-increasing, piecewise-linear `f(τ) = Σ clip(z_i − τ, 0, 1)`.
 * Its breakpoints are the values `z_i` and `z_i − 1`.
 *
 * τ is found by bisection on a bracket `[lo, hi]` with `f(lo) ≥ k ≥ f(hi)`. Every pass also counts
 * the breakpoints strictly inside each half; as soon as the kept half holds none, `f` is linear on
 * it and τ is solved exactly on that piece: with `S` the entries fractional there and `U` those
 * saturated at 1, `Σ_S (z_i − τ) + |U| = k`, so `τ = lo + (Σ_S (z_i − lo) + |U| − k) / |S|`. The
 * result is exact to float rounding, not to a bisection tolerance. The loop usually ends after about
 * log2(spread / smallest breakpoint gap) passes; it stops at `MAX_BISECT` passes or when the bracket
 * is two adjacent floats (then the piece at the bracket is solved: error below one bracket width).
 */

/** Upper bound on bisection passes (each is one pass over the row). */
export const MAX_BISECT = 200;

/**
 * τ for the first `n` values of `x`, given a bracket `f(lo) ≥ k ≥ f(hi)` (finite values, 0 < k < n).
 * With no fractional entry on the final piece (a gap ≥ 1 around the k-th value: hard top-k) any τ of
 * the bracket is a root; the midpoint is returned.
 */
export function solveTau(x: ArrayLike<number>, n: number, k: number, lo: number, hi: number): number {
  for (let it = 0; it < MAX_BISECT; it++) {
    const mid = 0.5 * (lo + hi);
    if (!(mid > lo && mid < hi)) break;
    let f = 0;
    let nl = 0;
    let nr = 0;
    for (let i = 0; i < n; i++) {
      const v = x[i];
      const d = v - mid;
      f += d <= 0 ? 0 : Math.min(d, 1);
      const w = v - 1;
      if (v > lo && v < hi) {
        if (v < mid) nl++;
        else if (v > mid) nr++;
      }
      if (w > lo && w < hi) {
        if (w < mid) nl++;
        else if (w > mid) nr++;
      }
    }
    if (f > k) {
      lo = mid;
      if (nr === 0) break;
    } else if (f < k) {
      hi = mid;
      if (nl === 0) break;
    } else return mid;
  }
  // exact solve on the linear piece [lo, hi]
  let s = 0;
  let ns = 0;
  let nu = 0;
  for (let i = 0; i < n; i++) {
    const v = x[i];
    if (v <= lo) continue;
    if (v - 1 >= hi) nu++;
    else {
      s += v - lo;
      ns++;
    }
  }
  return ns === 0 ? 0.5 * (lo + hi) : lo + (s + nu - k) / ns;
}

/**
 * τ of a whole row of `n` values: −Infinity when `k ≥ n` (every entry is 1), NaN when a value is
 * not finite (the row's result is NaN).
 */
export function rowTau(x: ArrayLike<number>, n: number, k: number): number {
  if (k >= n) return Number.NEGATIVE_INFINITY;
  let mn = Number.POSITIVE_INFINITY;
  let mx = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    const v = x[i];
    if (!Number.isFinite(v)) return Number.NaN;
    if (v < mn) mn = v;
    if (v > mx) mx = v;
  }
  return solveTau(x, n, k, mn - 1, mx);
}

/** `clip(z − τ, 0, 1)` (1 when τ = −∞, NaN when τ is NaN). */
export function gate(z: number, tau: number): number {
  if (tau === Number.NEGATIVE_INFINITY) return 1;
  const d = z - tau;
  return d <= 0 ? 0 : Math.min(d, 1); // NaN stays NaN
}

/**
 * The causal prefix projection of one (b, h) score sequence `u_0 … u_{T−1}` for SPARSEK attention:
 * query `i` projects the prefix `u_0 … u_e`, `e = i − window`, with budget k. Since adding an entry
 * can only raise f, the thresholds `τ_i` never decrease, so an entry with `u_j ≤ τ_i` is 0 for every
 * later query too and leaves the active set for good. `step` therefore works on the active set only
 * (the previous support plus the new entry), bracketed by `[τ_{i−1}, max]`: its cost per query is
 * O(|active| · passes), not O(i).
 */
export class PrefixSelector {
  /**
   * Positions with a non-zero gate for the current query (the support), in the order they were
   * added (eviction keeps the survivors' order). Grows by doubling when `capacity` is reached.
   */
  active: Int32Array;
  /** Number of valid entries of `active`. */
  size = 0;
  /** Threshold of the current query (−∞ while the prefix has ≤ k entries). */
  tau = Number.NEGATIVE_INFINITY;
  private vals: Float64Array;

  constructor(
    private readonly u: ArrayLike<number>,
    private readonly at: (j: number) => number,
    private readonly k: number,
    capacity: number,
  ) {
    this.active = new Int32Array(Math.max(capacity, 1));
    this.vals = new Float64Array(Math.max(capacity, 1));
  }

  /**
   * Adds prefix entry `e` (entries must come in order 0, 1, 2, …) and projects. With `tau` given
   * (a saved threshold, for the backward pass) the bisection is skipped and the same support is
   * rebuilt. Returns τ.
   */
  step(e: number, tau?: number): number {
    const { u, at } = this;
    if (this.size === this.active.length) this.grow();
    this.active[this.size] = e;
    this.vals[this.size] = u[at(e)];
    this.size++;
    const n = e + 1;
    let t: number;
    if (tau !== undefined) t = tau;
    else if (this.k >= n) t = Number.NEGATIVE_INFINITY;
    else {
      let mn = Number.POSITIVE_INFINITY;
      let mx = Number.NEGATIVE_INFINITY;
      let finite = true;
      for (let a = 0; a < this.size; a++) {
        const v = this.vals[a];
        if (!Number.isFinite(v)) finite = false;
        if (v < mn) mn = v;
        if (v > mx) mx = v;
      }
      if (!finite) t = Number.NaN;
      else {
        // evicted entries are ≤ τ_{i−1} ≤ τ_i: they add nothing to f on the bracket
        const lo = this.tau === Number.NEGATIVE_INFINITY ? mn - 1 : this.tau;
        t = solveTau(this.vals, this.size, this.k, lo, mx);
      }
    }
    this.tau = t;
    if (t !== Number.NEGATIVE_INFINITY && !Number.isNaN(t)) {
      let w = 0;
      for (let a = 0; a < this.size; a++) {
        if (this.vals[a] > t) {
          this.active[w] = this.active[a];
          this.vals[w] = this.vals[a];
          w++;
        }
      }
      this.size = w;
    }
    return t;
  }

  /** Doubles the active set's capacity (decoding: the support is not known in advance). */
  private grow(): void {
    const active = new Int32Array(2 * this.active.length);
    active.set(this.active);
    const vals = new Float64Array(2 * this.vals.length);
    vals.set(this.vals);
    this.active = active;
    this.vals = vals;
  }

  /** The gate of active entry `a` for the current query. */
  gateAt(a: number): number {
    return gate(this.vals[a], this.tau);
  }
}
