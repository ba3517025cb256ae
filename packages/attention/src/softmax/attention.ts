import { fail, type Tensor } from '@foxgate/tensor';
import { type AttentionOptions, emptyResult, parseOptions } from '../options.js';
import { type AttentionResult, withStats } from '../stats.js';
import { checkQKV } from '../validate.js';
import { softmaxOp } from './op.js';

const OP = 'softmaxAttention';

/**
 * Causal softmax attention: `o_i = Σ_j softmax_j(scale·q_i·k_j) v_j` over `j ≤ p = i + Tk − Tq`
 * (with `window`: over `p − window < j ≤ p`, sliding-window attention).
 * `q [B,Tq,H,D]`, `k, v [B,Tk,H,D]`, `Tq ≤ Tk`. Differentiable in q, k and v.
 */
export function softmaxAttention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions & { stats: true }): AttentionResult;
export function softmaxAttention(q: Tensor, k: Tensor, v: Tensor, opts?: AttentionOptions): Tensor;
export function softmaxAttention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor | AttentionResult {
  const dims = checkQKV(OP, q, k, v);
  if (opts !== null && typeof opts === 'object' && 'acp' in opts) fail(OP, 'opts.acp needs forget gates: use forgettingAttention');
  const o = parseOptions(OP, opts, dims, []);
  if (dims.Tq === 0 || dims.B * dims.H === 0) return emptyResult(q, dims, o.stats);
  const attrs = { dims, scale: o.scale, stats: o.stats, deterministic: o.deterministic, window: o.window };
  const [out, computed] = softmaxOp([q, k, v], attrs, o.impl);
  return o.stats ? withStats(out, computed, dims) : out;
}
