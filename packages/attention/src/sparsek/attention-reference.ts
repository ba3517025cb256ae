import { noGrad } from '@foxgate/autograd';
import {
  add,
  expand,
  full,
  gt,
  log,
  logicalAnd,
  logicalOr,
  matmul,
  mul,
  permute,
  reshape,
  softmax,
  type Tensor,
  tensor,
  where,
} from '@foxgate/tensor';
import { scoped } from '../scope.js';
import type { SkAttrs } from './attention-cpu.js';
import { sparsekReference } from './reference.js';

/**
 * The composed reference of SPARSEK attention: dense `[B,H,T,T]` masks and scores from tensor
 * primitives, differentiated by autograd (through `sparsekReference` for the gates); the oracle of
 * the fused kernels. Memory O(B·H·T²), and the prefix projections cost 64–110 bisection passes
 * over all T×T entries.
 */
export function sparsekAttentionReference(q: Tensor, k: Tensor, v: Tensor, u: Tensor, a: SkAttrs): Tensor {
  return scoped(() => {
    const { B, T, H } = a.dims;
    const w = a.window;
    const backend = q.backend;
    const prefixMask = new Uint8Array(T * T);
    const windowMask = new Uint8Array(T * T);
    for (let i = 0; i < T; i++) {
      for (let j = 0; j <= i; j++) {
        if (j <= i - w) prefixMask[i * T + j] = 1;
        else windowMask[i * T + j] = 1;
      }
    }
    const prefix = tensor(prefixMask, [T, T], { dtype: 'bool', backend });
    const win = tensor(windowMask, [T, T], { dtype: 'bool', backend });
    // row i of the prefix projection: u_{b,0..T−1,h} with the entries j ≤ i − w taking part
    const z = expand(reshape(permute(u, [0, 2, 1]), [B, H, 1, T]), [B, H, T, T]);
    const budget = full([], a.budget, { dtype: q.dtype, backend });
    const m = sparsekReference(z, budget, prefix); // [B,H,T,T], 0 outside the prefix
    const allowed = noGrad(() => logicalOr(win, logicalAnd(prefix, gt(m, 0))));
    const g = where(win, 1, m); // the gate of every pair: 1 in the window
    const qh = permute(q, [0, 2, 1, 3]);
    const kt = permute(k, [0, 2, 3, 1]);
    const vh = permute(v, [0, 2, 1, 3]);
    let s = mul(matmul(qh, kt), a.scale);
    if (a.gate === 'kv') s = mul(s, g);
    else if (a.gate === 'logit') s = add(s, log(where(allowed, g, 1)));
    const p = softmax(where(allowed, s, Number.NEGATIVE_INFINITY), -1);
    const o = matmul(a.gate === 'logit' ? p : mul(p, g), vh); // [B,H,T,D]
    return permute(o, [0, 2, 1, 3]).contiguous();
  });
}
