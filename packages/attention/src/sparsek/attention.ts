import { fail, fmtShape, type Tensor, tensor } from '@foxgate/tensor';
import type { Gate, SkAttrs, SkDims } from './attention-cpu.js';
import { sparsekAttentionOp } from './attention-op.js';
import { checkFloat, checkImpl, checkOpts } from './validate.js';

export type SparsekGate = Gate;

export interface SparsekAttentionOptions {
  /** Budget of older positions per query: `m_i = sparsek(u_{≤ i−window}, k)` sums to k (> 0). */
  k: number;
  /** Local window: query i always attends to `j ∈ (i − window, i]` (an integer ≥ 0). */
  window: number;
  /**
   * How the gates `m_ij` of the selected older positions enter (window positions have gate 1):
   * `'kv'` (default, the paper's form) scales their keys and values, `s_ij = scale·m_ij·q_i·k_j`
   * and value `m_ij·v_j`; `'v'` scales only the values; `'logit'` adds `log m_ij` to the logit.
   */
  gate?: SparsekGate;
  /** Score scale (default `1/√D`). */
  scale?: number;
  /**
   * 'fused' (default: the host kernels on the CPU, float32/float64; the WGSL kernels on WebGPU,
   * float32) or 'reference' (dense `[T,T]` masks, any backend).
   */
  impl?: 'fused' | 'reference';
}

const OP = 'sparsekAttention';
const GATES: readonly Gate[] = ['kv', 'v', 'logit'];

function checkInputs(q: unknown, k: unknown, v: unknown, u: unknown): SkDims {
  const tq = checkFloat(OP, 'q', q);
  const tk = checkFloat(OP, 'k', k);
  const tv = checkFloat(OP, 'v', v);
  const tu = checkFloat(OP, 'u', u);
  if (tq.rank !== 4) fail(OP, `q must have shape [B,T,H,D], got ${fmtShape(tq.shape)}`);
  const [B, T, H, D] = tq.shape;
  for (const [name, t] of [
    ['k', tk],
    ['v', tv],
  ] as const) {
    if (t.rank !== 4 || t.shape.some((d, i) => d !== tq.shape[i]))
      fail(OP, `${name} ${fmtShape(t.shape)} must have the shape of q ${fmtShape(tq.shape)} ([B,T,H,D])`);
  }
  if (tu.rank !== 3 || tu.shape[0] !== B || tu.shape[1] !== T || tu.shape[2] !== H)
    fail(OP, `u must have shape [B,T,H] = ${fmtShape([B, T, H])} for q ${fmtShape(tq.shape)}, got ${fmtShape(tu.shape)}`);
  for (const [name, t] of [
    ['k', tk],
    ['v', tv],
    ['u', tu],
  ] as const) {
    if (t.dtype !== tq.dtype) fail(OP, `${name} has dtype ${t.dtype} but q has ${tq.dtype}; cast to one float dtype`);
    if (t.backend !== tq.backend)
      fail(OP, `${name} lives on the ${t.backend.name} backend but q on ${tq.backend.name}; move it with toBackend()`);
  }
  if (D < 1) fail(OP, `head dim D of q ${fmtShape(tq.shape)} must be at least 1`);
  return { B, T, H, D };
}

function checkAttrs(opts: SparsekAttentionOptions, D: number): Omit<SkAttrs, 'dims'> {
  const { k, window } = opts;
  if (typeof k !== 'number' || !Number.isFinite(k) || k <= 0) fail(OP, `opts.k must be a finite number > 0, got ${String(k)}`);
  if (typeof window !== 'number' || !Number.isInteger(window) || window < 0)
    fail(OP, `opts.window must be an integer ≥ 0, got ${String(window)}`);
  const gate = opts.gate ?? 'kv';
  if (!GATES.includes(gate)) fail(OP, `opts.gate must be 'kv', 'v' or 'logit', got ${JSON.stringify(opts.gate)}`);
  let scale = 1 / Math.sqrt(D);
  if (opts.scale !== undefined) {
    if (typeof opts.scale !== 'number' || !Number.isFinite(opts.scale))
      fail(OP, `opts.scale must be a finite number, got ${String(opts.scale)}`);
    scale = opts.scale;
  }
  return { budget: k, window, gate, scale };
}

/**
 * SPARSEK attention (Lou et al. 2024) with a sliding window, causal, `q, k, v [B,T,H,D]`, scores
 * `u [B,T,H]` of a query-independent scoring network. Query i attends to its last `window`
 * positions `j ∈ (i − window, i]` (gate 1) and to the older positions `j ≤ i − window` selected by
 * `m_i = sparsek(u_{≤ i−window}, k)` (the support of m_i, gates m_ij; a prefix of ≤ k entries is
 * taken whole). Differentiable in q, k, v and u. Fused kernels on the CPU (float32/float64) and
 * on WebGPU (float32): `sparsekAttentionOp` (attention-op.ts) on the fused-op scaffold.
 */
export function sparsekAttention(q: Tensor, k: Tensor, v: Tensor, u: Tensor, opts: SparsekAttentionOptions): Tensor {
  const dims = checkInputs(q, k, v, u);
  checkOpts(OP, opts);
  const impl = checkImpl(OP, opts.impl);
  const attrs: SkAttrs = { dims, ...checkAttrs(opts, dims.D) };
  if (impl === 'fused' && dims.B * dims.T * dims.H === 0)
    return tensor(new Float64Array(0), [...q.shape], { dtype: q.dtype, backend: q.backend });
  return sparsekAttentionOp([q, k, v, u], attrs, impl)[0];
}
