import {
  add,
  cumsum,
  ge,
  logicalAnd,
  logicalOr,
  matmul,
  mul,
  permute,
  reshape,
  slice,
  softmax,
  sub,
  type Tensor,
  take,
  tensor,
  unsqueeze,
  where,
} from '@foxgate/tensor';
import { scoped } from '../scope.js';
import { diagKeyBlock, type FoxDims } from '../tiles.js';

/**
 * The composed reference of forgetting attention: plain tensor ops that materialise the
 * `[B,H,Tq,Tk]` scores, differentiable by autograd through its primitive rules. It is the oracle
 * the fused kernels are tested against. With ACP it applies the same tile-granular pruning as the
 * kernels (tiles of `blockQ × blockK`), so fused and reference agree to rounding.
 */
export interface ReferenceOptions {
  scale: number;
  /** ACP threshold broadcast to `[B,H]` (q's dtype); absent: nothing is pruned. */
  delta?: Tensor | null;
  blockQ: number;
  blockK: number;
  /** Sliding window: query position p sees keys `p − window < j ≤ p` (absent: all `j ≤ p`). */
  window?: number | null;
}

/** Host-built structural masks (they depend only on the sizes). */
function structure(dims: FoxDims, bq: number, bk: number, window: number | null, backend: Tensor['backend']) {
  const { Tq, Tk } = dims;
  const off = Tk - Tq;
  const causal = new Uint8Array(Tq * Tk);
  const diag = new Uint8Array(Tq * Tk);
  const qStart = new Int32Array(Tq);
  const kEnd = new Int32Array(Tk);
  for (let i = 0; i < Tq; i++) {
    const qb = Math.floor(i / bq);
    qStart[i] = qb * bq + off;
    const dkb = diagKeyBlock(qb, dims, bq, bk);
    for (let j = 0; j < Tk; j++) {
      causal[i * Tk + j] = j <= i + off && (window === null || j > i + off - window) ? 1 : 0;
      diag[i * Tk + j] = Math.floor(j / bk) >= dkb ? 1 : 0;
    }
  }
  for (let j = 0; j < Tk; j++) kEnd[j] = Math.min((Math.floor(j / bk) + 1) * bk, Tk) - 1;
  return {
    causal: tensor(causal, [Tq, Tk], { dtype: 'bool', backend }),
    diag: tensor(diag, [Tq, Tk], { dtype: 'bool', backend }),
    qStart: tensor(qStart, [Tq], { dtype: 'int32', backend }),
    kEnd: tensor(kEnd, [Tk], { dtype: 'int32', backend }),
  };
}

/**
 * `o = softmax(scale·q·kᵀ + Λ_i − Λ_j, causal [∧ window]) · v` for `q [B,Tq,H,D]`, `k,v [B,Tk,H,D]`,
 * `logF [B,Tk,H]` (null: plain softmax attention). Returns `[B,Tq,H,D]`.
 */
export function foxReference(q: Tensor, k: Tensor, v: Tensor, logF: Tensor | null, dims: FoxDims, opts: ReferenceOptions): Tensor {
  return scoped(() => {
    const { B, Tq, Tk, H } = dims;
    const qh = permute(q, [0, 2, 1, 3]);
    const kt = permute(k, [0, 2, 3, 1]);
    const vh = permute(v, [0, 2, 1, 3]);
    let s = mul(matmul(qh, kt), opts.scale);
    const st = structure(dims, opts.blockQ, opts.blockK, opts.window ?? null, q.backend);
    let keep = st.causal;
    if (logF) {
      const lam = permute(cumsum(logF, 1), [0, 2, 1]); // [B,H,Tk]
      const lamQ = slice(lam, [null, null, [Tk - Tq, Tk]]); // [B,H,Tq]
      s = add(s, sub(unsqueeze(lamQ, -1), unsqueeze(lam, -2)));
      if (opts.delta) {
        // a tile is kept when Λ(first query of its query tile) − Λ(last key of its key tile) ≥ δ
        const lq0 = unsqueeze(take(lam, st.qStart, 2), -1);
        const lkEnd = unsqueeze(take(lam, st.kEnd, 2), -2);
        const d = reshape(opts.delta, [B, H, 1, 1]);
        keep = logicalAnd(keep, logicalOr(ge(sub(lq0, lkEnd), d), st.diag));
      }
    }
    const masked = where(keep, s, Number.NEGATIVE_INFINITY);
    const p = softmax(masked, -1);
    const o = matmul(p, vh); // [B,H,Tq,D]
    return permute(o, [0, 2, 1, 3]).contiguous();
  });
}
