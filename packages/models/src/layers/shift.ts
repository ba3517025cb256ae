import { fail, fmtShape, type RngKeyLike, reshape, split, sub, type Tensor } from '@foxgate/tensor';
import { checkTensor, fmtTensor } from '../check.js';
import { headFused } from './head-fused.js';
import { applyLinear, checkLinear, type InitOptions, initLinear, type LinearParams } from './linear.js';

/** A data-dependent token shift (the official `ShiftLinear`): a projection and its per-head mixing gate. */
export interface ShiftLinearParams {
  /** `[h, h]`: k̂ = x·linearᵀ. */
  linear: LinearParams;
  /** `[H, h]`: α = sigmoid(x·shift_projᵀ), one mixing weight per head. */
  shift_proj: LinearParams;
}

/** `key` is split into (linear, shift_proj); weights N(0, std²), std 0.02 by default. */
export function initShiftLinear(key: RngKeyLike, dim: number, heads: number, opts: InitOptions & { std?: number } = {}): ShiftLinearParams {
  const [k1, k2] = split(key, 2);
  return { linear: initLinear(k1, dim, dim, opts), shift_proj: initLinear(k2, dim, heads, opts) };
}

/** The token shift's inputs for `headFused`: k̂ `[B,T,h]`, the logits of α `[B,T,H]`, keep `[B,T]` (or null), prev `[B,h]` (or null). */
export interface ShiftInputs {
  kh: Tensor;
  logit: Tensor;
  keep: Tensor | null;
  prev: Tensor | null;
}

/**
 * Checks `shiftLinear`'s arguments and computes k̂ = x·linearᵀ, the logits x·shift_projᵀ of α
 * (the fused op takes their sigmoid) and keep = 1 − reset (the caller owns kh, logit and keep;
 * `prev` is the caller's).
 */
export function shiftInputs(
  op: string,
  p: ShiftLinearParams,
  x: Tensor,
  heads: number,
  opts: { prev?: Tensor | null; reset?: Tensor | null } = {},
): ShiftInputs {
  checkLinear(op, 'p.linear', p.linear, x);
  checkLinear(op, 'p.shift_proj', p.shift_proj, x);
  if (x.rank !== 3) fail(op, `x must be [B,T,h], got ${fmtShape(x.shape)}`);
  const [B, T, h] = x.shape;
  if (p.shift_proj.weight.shape[0] !== heads || h % heads !== 0) {
    fail(op, `p.shift_proj.weight ${fmtShape(p.shift_proj.weight.shape)} must be [${heads},${h}] with ${heads} dividing ${h}`);
  }
  for (const [name, t, want] of [
    ['prev', opts.prev, [B, h]],
    ['reset', opts.reset, [B, T]],
  ] as const) {
    if (!t) continue;
    checkTensor(op, name, t);
    if (t.dtype !== x.dtype || t.rank !== 2 || t.shape[0] !== want[0] || t.shape[1] !== want[1]) {
      fail(op, `${name} must be ${x.dtype}[${want.join(',')}] for x ${fmtTensor(x)}, got ${fmtTensor(t)}`);
    }
    if (t.backend !== x.backend) fail(op, `${name} lives on ${t.backend.name} but x on ${x.backend.name}`);
  }
  const kh = applyLinear(p.linear, x);
  const logit = applyLinear(p.shift_proj, x);
  const keep = opts.reset ? sub(1, opts.reset) : null;
  return { kh, logit, keep, prev: opts.prev ?? null };
}

/**
 * `k_t = α_t·k̂_{t−1} + (1 − α_t)·k̂_t` per head, with `k̂ = x·linearᵀ` `[B,T,h]`, `α = sigmoid(x·shift_projᵀ)`
 * `[B,T,H]` and `k̂_{−1} = 0`. `prev` `[B,h]` replaces k̂_{−1} (decoding from a cache); `reset`
 * (`[B,T]` of x's dtype, 1 at a document start) treats k̂_{t−1} as 0 there. Returns k `[B,T,h]` and k̂ (the
 * caller owns both; a cache keeps the last row of k̂). The sigmoid and the mixing are one fused
 * op (`headFused`) whose backward keeps only k̂ and the logits (reset is a constant).
 */
export function shiftLinear(
  p: ShiftLinearParams,
  x: Tensor,
  heads: number,
  opts: { prev?: Tensor | null; reset?: Tensor | null } = {},
): { out: Tensor; raw: Tensor } {
  const { kh, logit, keep, prev } = shiftInputs('shiftLinear', p, x, heads, opts);
  const [B, T, h] = x.shape;
  const kh4 = reshape(kh, [B, T, heads, h / heads]);
  const out4 = headFused(kh4, { shift: { logit, keep, prev } });
  const out = reshape(out4, [B, T, h]);
  for (const t of [kh4, logit, keep, out4]) t?.dispose();
  return { out, raw: kh };
}
