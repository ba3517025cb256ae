import type { Tensor } from '@foxgate/tensor';

/**
 * Which leaves AdamW applies weight decay to, by default: tensors of rank ≥ 2 (weight matrices,
 * embeddings). 1-D and scalar leaves — norm weights, biases, the forget-gate bias
 * `model.layers.0.attn.fgate_proj.bias` — are not decayed, as in LM training practice (and the
 * FoX training setup). `path` is the leaf's dotted name; this rule looks at the shape only.
 */
export function defaultDecayMask(_path: string, t: Tensor): boolean {
  return t.rank >= 2;
}
