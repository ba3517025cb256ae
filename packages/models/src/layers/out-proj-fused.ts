import { customOp } from '@foxgate/autograd';
import { add, fail, matmul, reshape, sum, type Tensor, transpose } from '@foxgate/tensor';
import {
  type HeadFusedAttrs,
  type HeadFusedOptions,
  headFusedArgs,
  headFusedBackward,
  headFusedForward,
  headFusedInputs,
  headFusedSaved,
} from './head-fused.js';
import { checkLinear, type LinearParams } from './linear.js';

/*
 * The attention output's per-head steps (output norm, gate: `headFused`) and the output
 * projection as one op: `out = m·weightᵀ + bias`, `m = headFused(o, norm, gate)` flattened to
 * `[B,T,H·D]`. The projection's input m is not kept for the backward (it is the largest thing a
 * plain matmul would save): the backward recomputes it from o (which the attention op keeps
 * anyway), the gate logits and the per-row r with the forward kernel, then
 *   dweight = gᵀ·m,  dbias = Σ_rows g,  dm = g·weight  →  headFused's backward (do, dw, dz).
 */

interface Attrs {
  hf: HeadFusedAttrs;
  /** Inputs of the headFused part (o, w?, z?); then weight, bias?. */
  n: number;
  bias: boolean;
}

const op = customOp<Attrs>({
  name: 'attentionOutput',
  saveInputs: false,
  saveOutputs: false,
  forward(inputs, a) {
    const hfIn = inputs.slice(0, a.n);
    const w = inputs[a.n];
    const { y, rstd } = headFusedForward(hfIn, a.hf);
    const { B, T, H, D } = a.hf;
    const out0 = matmul(reshape(y, [B, T, H * D]), transpose(w));
    const out = a.bias ? add(out0, inputs[a.n + 1]) : out0;
    if (!a.hf.grads) {
      rstd?.dispose();
      return { outputs: [out] };
    }
    return { outputs: [out], saved: [...headFusedSaved(hfIn, rstd, a.hf), w] };
  },
  backward(gOut, saved, inputs, _outputs, a) {
    const g = gOut[0];
    if (!g) return inputs.map(() => null);
    if (saved.length === 0) fail('attentionOutput', 'internal: the forward ran without gradients while a gradient was recorded');
    const hfSaved = saved.slice(0, saved.length - 1);
    const w = saved[saved.length - 1];
    const { B, T, H, D } = a.hf;
    const { y } = headFusedForward(headFusedInputs(hfSaved, a.hf), { ...a.hf, grads: false });
    const g2 = reshape(g, [B * T, w.shape[0]]);
    const m2 = reshape(y, [B * T, H * D]);
    const dW = matmul(transpose(g2), m2); // [out, in]
    const db = a.bias ? sum(g2, 0) : null;
    const dm = reshape(matmul(g2, w), [B, T, H, D]);
    const hfGrads = headFusedBackward(
      dm,
      hfSaved,
      inputs.slice(0, a.n).map((t) => t.shape),
      a.hf,
    );
    return a.bias ? [...hfGrads, dW, db] : [...hfGrads, dW];
  },
});

/**
 * `linear(proj, headFused(o, steps))` on the attention output `o` `[B,T,H,D]` (steps: the output
 * norm and/or gate), flattened to `[B,T,H·D]` before the projection, as one op that keeps only
 * o, the gate logits and the per-row r for its backward. Returns `[B,T,out]`.
 */
export function attentionOutput(o: Tensor, steps: Pick<HeadFusedOptions, 'norm' | 'gate'>, proj: LinearParams): Tensor {
  const { inputs, attrs } = headFusedArgs(o, steps);
  const [B, T, H, D] = o.shape;
  const flat = reshape(o, [B, T, H * D]);
  checkLinear('attentionOutput', 'proj', proj, flat);
  flat.dispose();
  const all = [...inputs, proj.weight, ...(proj.bias ? [proj.bias] : [])];
  return op(all, { hf: attrs, n: inputs.length, bias: !!proj.bias })[0];
}
