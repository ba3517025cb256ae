import { type AcpOptions, forgettingAttention, type SparsekAttentionOptions, softmaxAttention, sparsekAttention } from '@foxgate/attention';
import { add, cast, fail, fmtShape, logsigmoid, mul, reshape, sub, type Tensor, tensor, unsqueeze, where } from '@foxgate/tensor';
import { headDim, type ModelConfig } from './config.js';
import { headFused } from './layers/head-fused.js';
import { applyLinear, type LinearParams } from './layers/linear.js';
import type { RMSNormParams } from './layers/norm.js';
import { attentionOutput } from './layers/out-proj-fused.js';
import { type RopeTables, ropeTablesFor, ropeTableTensors } from './layers/rope.js';
import { type ShiftLinearParams, shiftInputs } from './layers/shift.js';

/** The attention sub-layer's parameters, by the official names (optional members per config). */
export interface AttentionParams {
  q_proj: LinearParams;
  k_proj: LinearParams | ShiftLinearParams;
  v_proj: LinearParams | ShiftLinearParams;
  o_proj: LinearParams;
  fgate_proj?: LinearParams;
  /** SPARSEK scoring network `[H, h]` + bias (model 'sparsek'). */
  score_proj?: LinearParams;
  ogate_proj?: LinearParams;
  output_norm?: RMSNormParams;
  q_norm?: RMSNormParams;
  k_norm?: RMSNormParams;
}

/** QK-norm epsilon of the official FoX-Pro/Transformer-Pro blocks. */
export const QK_NORM_EPS = 1e-5;

/**
 * The logF forced at a document start (`docStarts`): Λ drops by 100 there, so a query's weight
 * on an earlier document's key is at most e^(2U − 100) of its own document's (U bounds the scaled
 * q·k), and ACP prunes those tiles. Small enough in magnitude that Λ keeps f32 precision over many
 * documents in a row.
 */
export const DOC_RESET_LOGF = -100;

/**
 * ε of the SPARSEK scores `u = score_proj(x) + ε·t` (t the absolute position, 0-based): a
 * tie-breaker toward recent tokens (the scores span only 4·10⁻² over 4096 positions, far less than
 * the gap of 1 that makes a selection hard), absolute so that a prefix scores the same whatever
 * follows it.
 */
export const SPARSEK_POSITION_EPS = 1e-5;

/**
 * The SPARSEK scores `u [B,T,H]` of one layer: the scoring network plus ε·position, the position
 * of row t being `offset + t` (or `offset[b] + t` per sequence: a ragged batch in decoding).
 */
export function sparsekScores(p: LinearParams, x: Tensor, offset: number | readonly number[]): Tensor {
  const [B, T] = x.shape;
  const per = typeof offset === 'number' ? null : offset;
  if (per && per.length !== B) fail('sparsekScores', `${per.length} offsets for a batch of ${B}`);
  const rows = per ? B : 1;
  const pos = new Float64Array(rows * T);
  for (let b = 0; b < rows; b++) {
    const o = per ? per[b] : (offset as number);
    for (let t = 0; t < T; t++) pos[b * T + t] = (o + t) * SPARSEK_POSITION_EPS;
  }
  const bias = tensor(pos, [rows, T, 1], { dtype: x.dtype, backend: x.backend });
  const u = add(applyLinear(p, x), bias);
  bias.dispose();
  return u;
}

/**
 * The RoPE tables of `T` rows from position `offset` for every layer of a model with `use_rope`
 * (undefined otherwise), in `x`'s dtype and backend: built once per forward or decoding call and
 * handed to each layer as `LayerContext.rope`.
 */
export function layerRopeTables(c: ModelConfig, T: number, offset: number, x: Tensor): RopeTables | undefined {
  if (!c.use_rope) return undefined;
  return ropeTableTensors(T, headDim(c), { base: c.rope_base, offset, dtype: x.dtype, backend: x.backend });
}

/** State a decoder hands to one attention layer (prefix keys/values; see the generation API). */
export interface LayerContext {
  acp?: boolean | AcpOptions;
  impl?: 'fused' | 'reference';
  /** bool `[B,T]`: true at a document start. */
  docStarts?: Tensor | null;
  /** The same as x's dtype (1 at a document start), for the token shift. */
  docReset?: Tensor | null;
  /** Position of the first row (RoPE offset). */
  offset?: number;
  /** RoPE tables for this call's rows (built once per forward; else each layer builds its own from `offset`). */
  rope?: RopeTables;
  /**
   * Per sequence, the absolute position of its first row in the SPARSEK scores (decoding a ragged
   * batch, whose RoPE runs at left-padded buffer positions); default `offset` for every sequence.
   */
  scoreOffsets?: readonly number[];
  stats?: boolean;
  /** A decoder's KV cache for this layer (generation): the token shift and attention go through it. */
  cache?: AttentionCacheHook | null;
}

/**
 * What a KV cache offers one attention layer (implemented in `generate/cache.ts`): the token
 * shift's previous k̂/v̂ row, and attention of this call's queries over the cached keys plus
 * this call's (which the cache appends).
 */
export interface AttentionCacheHook {
  /** The last k̂ (or v̂) row `[B,h]` before this call's tokens, or null before the first token. */
  shiftPrev(which: 'k' | 'v'): Tensor | null;
  /** This call's k̂ (or v̂) `[B,T,h]`: the cache keeps its last row (the layer disposes `raw`). */
  shiftRaw(which: 'k' | 'v', raw: Tensor): void;
  /** Appends k, v `[B,T,H,D]` (after QK-norm and RoPE) and logF `[B,T,H]` (FoX), attends q over the cache. */
  attend(q: Tensor, k: Tensor, v: Tensor, logF: Tensor | null): Tensor;
  /**
   * SPARSEK layers (model 'sparsek'): attends this call's q `[B,T,H,D]` over the cache's window
   * and selected entries, given this call's k, v and scores u `[B,T,H]` and the layer's options.
   */
  attendSparsek?(q: Tensor, k: Tensor, v: Tensor, u: Tensor, opts: SparsekAttentionOptions): Tensor;
}

export interface LayerOutput {
  out: Tensor;
  /** logF `[B,T,H]` (FoX models), returned when stats are on. */
  logF?: Tensor;
  /** Fraction of the 64×64 tiles that ACP pruned (a float32 scalar), when stats are on. */
  pruned?: Tensor;
}

function isShift(p: LinearParams | ShiftLinearParams): p is ShiftLinearParams {
  return (p as ShiftLinearParams).shift_proj !== undefined;
}

/**
 * The heads `[B,T,H,D]` of one projection (q, k or v) after its per-head steps, as one fused op
 * (`headFused`): the token shift where configured (the cache keeps this call's k̂/v̂), QK-norm,
 * RoPE. Without any step it is the projection itself, reshaped (a view).
 */
function heads(
  p: LinearParams | ShiftLinearParams,
  x: Tensor,
  shape: [number, number, number, number],
  steps: { norm?: { weight: Tensor; eps: number }; rope?: RopeTables; keep: Tensor | null },
  cache: AttentionCacheHook | null,
  which: 'q' | 'k' | 'v',
): Tensor {
  const H = shape[2];
  let shift: { logit: Tensor; keep: Tensor | null; prev: Tensor | null } | undefined;
  let raw: Tensor;
  if (isShift(p)) {
    if (which === 'q') fail('attentionLayer', 'internal: q has no token shift');
    const prev = cache?.shiftPrev(which) ?? null;
    const s = shiftInputs('shiftLinear', p, x, H, { prev });
    raw = s.kh;
    shift = { logit: s.logit, keep: steps.keep, prev };
  } else raw = applyLinear(p, x);
  const r4 = reshape(raw, shape);
  let out = r4;
  if (shift || steps.norm || steps.rope) {
    out = headFused(r4, { shift, norm: steps.norm, rope: steps.rope });
    r4.dispose();
    shift?.logit.dispose();
  }
  // after the shift used prev: the cache then swaps its previous row for this call's last
  if (shift) cache?.shiftRaw(which as 'k' | 'v', raw);
  raw.dispose();
  return out;
}

/**
 * One attention sub-layer on the normed hidden state `x` `[B,T,h]`: q/k/v projections (with the
 * token shift where configured), QK-norm, RoPE, forgetting or softmax attention, output norm and
 * gate, output projection. The per-head steps around the attention (shift, QK-norm and RoPE of
 * q/k/v; output norm and gate with the output projection) are fused ops (`headFused`,
 * `attentionOutput`) that keep only the projections before their per-head steps, the shift and
 * gate logits and the per-row norm scales for the backward.
 */
export function attentionLayer(p: AttentionParams, x: Tensor, c: ModelConfig, ctx: LayerContext): LayerOutput {
  const [B, T] = x.shape;
  const H = c.num_heads;
  const D = headDim(c);
  const shape: [number, number, number, number] = [B, T, H, D];
  const reset = ctx.docReset ?? null;
  const cache = ctx.cache ?? null;
  const qk = !!(p.q_norm && p.k_norm);
  let tables: RopeTables | undefined;
  let ownTables = false;
  if (c.use_rope) {
    const r = ropeTablesFor('rope', T, D, x, { base: c.rope_base, offset: ctx.offset ?? 0, tables: ctx.rope });
    tables = r.tables;
    ownTables = r.owned;
  }
  const shifted = isShift(p.k_proj) || isShift(p.v_proj);
  if (reset && shifted) {
    // checked here (the fused op checks keep's shape as well, but names it keep)
    if (reset.dtype !== x.dtype || reset.rank !== 2 || reset.shape[0] !== B || reset.shape[1] !== T || reset.backend !== x.backend) {
      fail('shiftLinear', `reset must be ${x.dtype}[${B},${T}] for x ${fmtShape(x.shape)}, got ${reset.dtype}${fmtShape(reset.shape)}`);
    }
  }
  const keep = reset && shifted ? sub(1, reset) : null;
  const qn = qk && p.q_norm ? { weight: p.q_norm.weight, eps: QK_NORM_EPS } : undefined;
  const kn = qk && p.k_norm ? { weight: p.k_norm.weight, eps: QK_NORM_EPS } : undefined;
  const q = heads(p.q_proj, x, shape, { norm: qn, rope: tables, keep }, cache, 'q');
  const k = heads(p.k_proj, x, shape, { norm: kn, rope: tables, keep }, cache, 'k');
  const v = heads(p.v_proj, x, shape, { keep }, cache, 'v');
  keep?.dispose();
  if (ownTables && tables) {
    tables.cos.dispose();
    tables.sin.dispose();
  }
  let o: Tensor;
  let logF: Tensor | undefined;
  let pruned: Tensor | undefined;
  if (p.score_proj) {
    const impl = ctx.impl ?? 'fused';
    const u = sparsekScores(p.score_proj, x, ctx.scoreOffsets ?? ctx.offset ?? 0);
    const opts = { k: c.sparsek_k ?? 64, window: c.sparsek_window ?? 64, gate: c.sparsek_gate ?? 'kv', impl };
    if (cache) {
      // decoding: the bounded SPARSEK cache (generate/sparsek-cache.ts)
      if (!cache.attendSparsek) fail('generate', 'this KV cache has no SPARSEK attention (attendSparsek); use createDecoder');
      o = cache.attendSparsek(q, k, v, u, opts);
    } else o = sparsekAttention(q, k, v, u, opts);
  } else if (cache) {
    // decoding: the cache appends k, v, logF and attends over everything it holds
    o = cache.attend(q, k, v, p.fgate_proj ? logsigmoid(applyLinear(p.fgate_proj, x)) : null);
  } else if (p.fgate_proj) {
    const lf = logsigmoid(applyLinear(p.fgate_proj, x)); // [B,T,H]
    logF = ctx.docStarts ? where(unsqueeze(ctx.docStarts, -1), DOC_RESET_LOGF, lf) : lf;
    const opts = { acp: ctx.acp ?? false, impl: ctx.impl };
    if (ctx.stats) {
      const r = forgettingAttention(q, k, v, logF, { ...opts, stats: true });
      o = r.out;
      pruned = mul(r.stats.fraction, -1).add(1);
    } else o = forgettingAttention(q, k, v, logF, opts);
  } else {
    o = softmaxAttention(q, k, v, { impl: ctx.impl });
  }
  // output norm, gate and projection: one fused op (keeps o, the gate logits and r; not the projection's input)
  const on = p.output_norm ? { weight: p.output_norm.weight, eps: c.norm_eps } : undefined;
  const gate = p.ogate_proj ? applyLinear(p.ogate_proj, x) : undefined;
  let out: Tensor;
  if (on || gate) {
    out = attentionOutput(o, { norm: on, gate }, p.o_proj);
    gate?.dispose();
  } else {
    const flat = reshape(o, [B, T, H * D]);
    out = applyLinear(p.o_proj, flat);
    flat.dispose();
  }
  return { out, logF: ctx.stats ? logF : undefined, pruned };
}

/** docStarts as the float mask the token shift takes. */
export function docResetOf(docStarts: Tensor, like: Tensor): Tensor {
  return cast(docStarts, like.dtype);
}
