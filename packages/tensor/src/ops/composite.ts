import { isFloat } from '../dtype.js';
import { fail, fmtShape } from '../errors.js';
import { record } from '../prims.js';
import { normAxes, normAxis } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { add, cast, div, exp, log, maximum, mul, ne, rsqrt, sub, where } from './elementwise.js';
import { takeAlongAxis } from './indexing.js';
import { type Axes, max, sum } from './reduce.js';
import { backendOf, release, wrap } from './util.js';
import { reshape, unsqueeze } from './views.js';

/*
 * Composite ops, written once from primitives so every backend and autograd get them for free.
 */

function countOf(x: Tensor, axes: Axes): number {
  return normAxes('mean', axes, x.rank).reduce((n, a) => n * x.shape[a], 1);
}

/** Mean over `axes` (default all). */
export function mean(x: Tensor, axes?: Axes, keepdims = false): Tensor {
  if (!isFloat(x.dtype)) fail('mean', `needs a float tensor, got ${x.dtype}${fmtShape(x.shape)}`);
  const s = sum(x, axes, keepdims);
  const out = div(s, countOf(x, axes));
  release(s);
  return out;
}

/** Variance over `axes` with `correction` (0 = population, 1 = sample). */
export function variance(x: Tensor, axes?: Axes, opts: { keepdims?: boolean; correction?: number } = {}): Tensor {
  const n = countOf(x, axes);
  const m = mean(x, axes, true);
  const d = sub(x, m);
  const d2 = mul(d, d);
  const s = sum(d2, axes, opts.keepdims ?? false);
  const out = div(s, Math.max(n - (opts.correction ?? 0), 0));
  release(m, d, d2, s);
  return out;
}

/** log Σ exp(x) over `axis`, stable (subtracts the max). */
export function logsumexp(x: Tensor, axis = -1, keepdims = false): Tensor {
  const a = normAxis('logsumexp', axis, x.rank);
  const m = max(x, a, true);
  const d = sub(x, m);
  const e = exp(d);
  const s = sum(e, a, true);
  const l = log(s);
  const r = add(l, m);
  const out = keepdims
    ? r
    : reshape(
        r,
        x.shape.filter((_, i) => i !== a),
      );
  release(m, d, e, s, l, keepdims ? null : r);
  return out;
}

/**
 * softmax along `axis` (stable: the row max is subtracted first). A primitive: one fused kernel
 * per backend, with the special values of max/sub/exp/sum/div (a row holding NaN or +Infinity,
 * or made only of −Infinity, is all NaN). A rank-0 tensor is one row of length 1.
 */
export function softmax(x: Tensor, axis = -1): Tensor {
  const b = backendOf('softmax', x);
  if (!isFloat(x.dtype)) fail('softmax', `needs a float tensor, got ${x.dtype}${fmtShape(x.shape)}; cast first`);
  const a = normAxis('softmax', axis, Math.max(x.rank, 1));
  const out = wrap(b, b.softmax(x, a), x.dtype, x.shape);
  return record('softmax', [x], out, { axis: a });
}

/** log softmax along `axis` (stable). */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  const lse = logsumexp(x, axis, true);
  const out = sub(x, lse);
  release(lse);
  return out;
}

export interface CrossEntropyOptions {
  /** Labels equal to this are ignored (no loss, not counted in the mean). Default −100. */
  ignoreIndex?: number;
  /** 'mean' over non-ignored labels (default), 'sum', or 'none' (per-label losses). */
  reduction?: 'mean' | 'sum' | 'none';
}

/**
 * Cross-entropy of `logits [..., C]` against int32 class `labels [...]`, stable
 * (logsumexp − picked logit).
 */
export function crossEntropy(logits: Tensor, labels: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  if (labels.dtype !== 'int32') fail('crossEntropy', `labels must be int32, got ${labels.dtype}${fmtShape(labels.shape)}`);
  if (logits.rank !== labels.rank + 1 || labels.shape.some((d, i) => d !== logits.shape[i])) {
    fail('crossEntropy', `logits ${fmtShape(logits.shape)} must be labels ${fmtShape(labels.shape)} plus a class axis`);
  }
  const ignore = opts.ignoreIndex ?? -100;
  const reduction = opts.reduction ?? 'mean';
  const valid = ne(labels, ignore);
  const safe = where(valid, labels, 0);
  const idx = unsqueeze(safe, -1);
  const picked = takeAlongAxis(logits, idx, -1);
  const pickedR = reshape(picked, labels.shape);
  const lse = logsumexp(logits, -1);
  const raw = sub(lse, pickedR);
  const mask = cast(valid, logits.dtype);
  const losses = mul(raw, mask);
  release(safe, idx, picked, pickedR, lse, raw);
  if (reduction === 'none') {
    release(valid, mask);
    return losses;
  }
  const total = sum(losses);
  if (reduction === 'sum') {
    release(valid, mask, losses);
    return total;
  }
  const count = sum(mask);
  const denom = maximum(count, 1);
  const out = div(total, denom);
  release(valid, mask, losses, total, count, denom);
  return out;
}

/** RMSNorm over the last axis: `x · rsqrt(mean(x²) + eps) · weight`. */
export function rmsNorm(x: Tensor, weight?: Tensor | null, eps = 1e-6): Tensor {
  if (weight && (weight.rank !== 1 || weight.shape[0] !== x.shape[x.rank - 1])) {
    fail('rmsNorm', `weight ${fmtShape(weight.shape)} must be [${x.shape[x.rank - 1]}] for x ${fmtShape(x.shape)}`);
  }
  const sq = mul(x, x);
  const ms = mean(sq, -1, true);
  const shifted = add(ms, eps);
  const r = rsqrt(shifted);
  const normed = mul(x, r);
  release(sq, ms, shifted, r);
  if (!weight) return normed;
  const out = mul(normed, weight);
  release(normed);
  return out;
}
