import { matmul, mul, permute, softmax, type Tensor, tensor, where } from '@foxgate/tensor';
import { scoped } from '../scope.js';
import type { FoxDims } from '../tiles.js';

/**
 * The composed reference of causal softmax attention: `o = softmax(scale·q·kᵀ, causal)·v` with
 * the `[B,H,Tq,Tk]` scores materialised, differentiable by autograd; query i sits at key
 * position `p = i + Tk − Tq` and sees keys `j ≤ p` (with a `window`: `p − window < j ≤ p`). The
 * oracle of the fused kernels (those of forgetting attention run without a gate, Λ ≡ 0).
 */
export function softmaxReference(q: Tensor, k: Tensor, v: Tensor, dims: FoxDims, scale: number, window: number | null = null): Tensor {
  return scoped(() => {
    const { Tq, Tk } = dims;
    const causal = new Uint8Array(Tq * Tk);
    for (let i = 0; i < Tq; i++) {
      const p = i + Tk - Tq;
      causal.fill(1, i * Tk + (window === null ? 0 : Math.max(0, p - window + 1)), i * Tk + p + 1);
    }
    const keep = tensor(causal, [Tq, Tk], { dtype: 'bool', backend: q.backend });
    const s = mul(matmul(permute(q, [0, 2, 1, 3]), permute(k, [0, 2, 3, 1])), scale);
    const p = softmax(where(keep, s, Number.NEGATIVE_INFINITY), -1);
    return permute(matmul(p, permute(v, [0, 2, 1, 3])), [0, 2, 1, 3]).contiguous();
  });
}
