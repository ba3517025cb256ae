import { noGrad } from '@foxgate/autograd';
import {
  add,
  cast,
  div,
  ge,
  gt,
  logicalAnd,
  lt,
  max,
  maximum,
  min,
  minimum,
  mul,
  sub,
  sum,
  type Tensor,
  tidy,
  where,
} from '@foxgate/tensor';
import { scoped } from '../scope.js';

/**
 * The composed reference of SPARSEK: tensor primitives only, on any backend, differentiable by
 * autograd. τ is found on the device (no host readback) by a fixed number of vectorised bisection
 * passes over all rows at once (64 in float32, 110 in float64: the bracket then sits at float
 * resolution), outside the tape; the entries fractional (`S`) and saturated (`U`) at the final
 * midpoint are then held fixed and τ is solved on that piece with differentiable ops,
 *
 *   τ = (Σ_S z + |U| − k) / |S|,   p = [S]·(z − τ) + [U],
 *
 * so that autograd yields exactly the VJP `dz_i = s_i (g_i − mean_S g)` (zero when `S` is empty:
 * the hard top-k). It costs O(R·m) memory and 64–110 passes of O(R·m) work; it is the oracle.
 */
export function bisectionPasses(dtype: Tensor['dtype']): number {
  return dtype === 'float64' ? 110 : 64;
}

/**
 * `z [..., m]`; `k` broadcastable to `[..., 1]` (z's dtype, each > 0); `valid` (bool, broadcastable
 * to z) marks the entries taking part (others get 0; a row with at most k valid entries gets 1 on
 * each). Without `valid` every entry takes part.
 */
export function sparsekReference(z: Tensor, k: Tensor, valid: Tensor | null = null): Tensor {
  return scoped(() => {
    const [Sf, Uf, full] = noGrad(() =>
      tidy(() => {
        const inf = Number.POSITIVE_INFINITY;
        const zMin = valid ? where(valid, z, inf) : z;
        const zMax = valid ? where(valid, z, -inf) : z;
        const n = valid ? sum(cast(valid, z.dtype), -1, true) : null;
        const m = z.shape[z.rank - 1];
        const kge = n ? ge(k, n) : ge(k, m); // [..., 1]: every valid entry is 1
        let lo = where(kge, 0, sub(min(zMin, -1, true), 1));
        let hi = where(kge, 1, max(zMax, -1, true));
        for (let it = bisectionPasses(z.dtype); it > 0; it--) {
          const mid = mul(add(lo, hi), 0.5);
          let c = minimum(maximum(sub(z, mid), 0), 1);
          if (valid) c = where(valid, c, 0);
          // f ≥ k moves lo up: in a hard top-k (f = k on a flat piece) the bracket ends at the top
          // of the piece, u_(k) − 1, where entry k is fractional with p = 1 — not at u_(k+1), where
          // float rounding would leave entry k+1 a gate of ~1e-8 (which 'kv'/'v' attention counts)
          const above = ge(sum(c, -1, true), k);
          const lo2 = where(above, mid, lo);
          const hi2 = where(above, hi, mid);
          lo.dispose();
          hi.dispose();
          lo = lo2;
          hi = hi2;
        }
        const d = sub(z, mul(add(lo, hi), 0.5));
        let s = logicalAnd(gt(d, 0), lt(d, 1));
        let u = ge(d, 1);
        if (valid) {
          s = logicalAnd(s, valid);
          u = logicalAnd(u, valid);
        }
        const fullRow = valid ? cast(valid, z.dtype) : null;
        return [cast(s, z.dtype), cast(u, z.dtype), { kge, fullRow }] as const;
      }),
    );
    const ns = sum(Sf, -1, true);
    const tau = div(sub(add(sum(mul(z, Sf), -1, true), sum(Uf, -1, true)), k), maximum(ns, 1));
    const p = add(mul(Sf, sub(z, tau)), Uf);
    return where(full.kge, full.fullRow ?? 1, p);
  });
}
