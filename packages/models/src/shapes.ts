import { headDim, intermediateSize, type ModelConfig } from './config.js';

/**
 * Every parameter of a model by its official name (`model.layers.0.attn.q_proj.weight`) and
 * shape, in the order `init` creates them. Linear weights are `[out, in]` (PyTorch's layout).
 */
export function paramShapes(c: ModelConfig): Map<string, number[]> {
  const h = c.hidden_size;
  const H = c.num_heads;
  const I = intermediateSize(c);
  const m = new Map<string, number[]>();
  m.set('model.embeddings.weight', [c.vocab_size, h]);
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}.`;
    m.set(`${p}attn_norm.weight`, [h]);
    m.set(`${p}attn.q_proj.weight`, [h, h]);
    for (const [name, shifted] of [
      ['k', c.use_k_shift],
      ['v', c.use_v_shift],
    ] as const) {
      if (shifted) {
        m.set(`${p}attn.${name}_proj.linear.weight`, [h, h]);
        m.set(`${p}attn.${name}_proj.shift_proj.weight`, [H, h]);
      } else m.set(`${p}attn.${name}_proj.weight`, [h, h]);
    }
    m.set(`${p}attn.o_proj.weight`, [h, h]);
    if (c.fgate_type === 'full') {
      m.set(`${p}attn.fgate_proj.weight`, [H, h]);
      m.set(`${p}attn.fgate_proj.bias`, [H]);
    }
    if (c.model === 'sparsek') {
      // the SPARSEK scoring network u = x·Wᵀ + b (+ ε·position), one score per head
      m.set(`${p}attn.score_proj.weight`, [H, h]);
      m.set(`${p}attn.score_proj.bias`, [H]);
    }
    if (c.use_output_gate) m.set(`${p}attn.ogate_proj.weight`, [h, h]);
    if (c.use_output_norm) m.set(`${p}attn.output_norm.weight`, [h]);
    if (c.qk_norm) {
      const n = c.qk_norm_share_param_across_head ? headDim(c) : h;
      m.set(`${p}attn.q_norm.weight`, [n]);
      m.set(`${p}attn.k_norm.weight`, [n]);
    }
    m.set(`${p}mlp_norm.weight`, [h]);
    m.set(`${p}mlp.gate_proj.weight`, [2 * I, h]);
    m.set(`${p}mlp.down_proj.weight`, [h, I]);
  }
  m.set('model.norm.weight', [h]);
  if (!c.tie_word_embeddings) m.set('lm_head.weight', [c.vocab_size, h]);
  return m;
}

/**
 * The number of parameters, from the closed formula: per layer 4h² (q, k, v, o) + 3hI (MLP)
 * + 2h (norms) + gate, SPARSEK score, shift, output-gate/norm and QK-norm terms; plus Vh (embedding), h (final
 * norm) and Vh (LM head, unless tied). Tests hold it equal to the sum over `paramShapes`.
 */
export function countParams(c: ModelConfig): number {
  const h = c.hidden_size;
  const H = c.num_heads;
  const I = intermediateSize(c);
  let layer = 4 * h * h + 3 * h * I + 2 * h;
  if (c.fgate_type === 'full') layer += H * h + H;
  if (c.model === 'sparsek') layer += H * h + H;
  if (c.use_k_shift) layer += H * h;
  if (c.use_v_shift) layer += H * h;
  if (c.use_output_gate) layer += h * h;
  if (c.use_output_norm) layer += h;
  if (c.qk_norm) layer += 2 * (c.qk_norm_share_param_across_head ? headDim(c) : h);
  return c.vocab_size * h * (c.tie_word_embeddings ? 1 : 2) + h + c.num_hidden_layers * layer;
}
