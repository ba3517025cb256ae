import {
  add,
  concat,
  fail,
  fmtShape,
  mul,
  narrow,
  type RngKeyLike,
  reshape,
  sigmoid,
  split,
  sub,
  type Tensor,
  unsqueeze,
  zeros,
} from '@foxgate/tensor';
import { checkTensor, fmtTensor } from '../check.js';
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

/**
 * `k_t = α_t·k̂_{t−1} + (1 − α_t)·k̂_t` per head, with `k̂ = x·linearᵀ` `[B,T,h]`, `α = sigmoid(x·shift_projᵀ)`
 * `[B,T,H]` and `k̂_{−1} = 0`. `prev` `[B,h]` replaces k̂_{−1} (decoding from a cache); `reset`
 * (`[B,T]` of x's dtype, 1 at a document start) treats k̂_{t−1} as 0 there. Returns k `[B,T,h]` and k̂ (the
 * caller owns both; a cache keeps the last row of k̂).
 */
export function shiftLinear(
  p: ShiftLinearParams,
  x: Tensor,
  heads: number,
  opts: { prev?: Tensor | null; reset?: Tensor | null } = {},
): { out: Tensor; raw: Tensor } {
  const op = 'shiftLinear';
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
  const first = opts.prev ? reshape(opts.prev, [B, 1, h]) : zeros([B, 1, h], { dtype: x.dtype, backend: x.backend });
  const body = narrow(kh, 1, 0, T - 1);
  let prev = concat([first, body], 1);
  if (opts.reset) {
    const keep = sub(1, opts.reset);
    const k3 = unsqueeze(keep, -1);
    const masked = mul(prev, k3);
    for (const t of [keep, k3, prev]) t.dispose();
    prev = masked;
  }
  const logit = applyLinear(p.shift_proj, x);
  const a = sigmoid(logit);
  logit.dispose();
  const a4 = unsqueeze(a, -1); // [B,T,H,1]
  const D = h / heads;
  const kh4 = reshape(kh, [B, T, heads, D]);
  const prev4 = reshape(prev, [B, T, heads, D]);
  const diff = sub(prev4, kh4);
  const mixed = mul(a4, diff);
  const out4 = add(kh4, mixed);
  const out = reshape(out4, [B, T, h]);
  for (const t of [first, body, prev, a, a4, kh4, prev4, diff, mixed, out4]) t.dispose();
  return { out, raw: kh };
}
