import { fail, type Tensor, type WebGPUBackend } from '@foxgate/tensor';
import type { SkAttrs } from './attention-cpu.js';

/**
 * The WebGPU backward of SPARSEK attention (in progress): from `q, k, v, dO, o [B,T,H,D]`,
 * `u [B,T,H]` and the forward's saved `lse, tau [B,H,T]` (float32 WebGPU tensors) the gradients
 * `dq, dk, dv [B,T,H,D]` and `du [B,T,H]`.
 */
export interface SkBackwardInputs {
  q: Tensor;
  k: Tensor;
  v: Tensor;
  u: Tensor;
  dO: Tensor;
  o: Tensor;
  lse: Tensor;
  tau: Tensor;
}

export interface SkBackwardGrads {
  dq: Tensor;
  dk: Tensor;
  dv: Tensor;
  du: Tensor;
}

export function sparsekAttnBackwardWebGPU(_backend: WebGPUBackend, _t: SkBackwardInputs, _a: SkAttrs): SkBackwardGrads {
  fail('sparsekAttention', 'the WebGPU backward is not implemented yet');
}
