import { fail, fmtShape } from '../errors.js';
import { record } from '../prims.js';
import { checkShape, normAxis } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { arange } from './creation.js';
import { add, mul } from './elementwise.js';
import { backendOf, release, wrap } from './util.js';
import { reshape } from './views.js';

/**
 * Gathers along `axis` (NumPy `take`): result shape `x.shape[:axis] + index.shape +
 * x.shape[axis+1:]`. `take(embedding, ids, 0)` is an embedding lookup. `index` is int32; an
 * out-of-range index throws on the CPU and reads 0 on WebGPU (checking would need a readback).
 */
export function take(x: Tensor, index: Tensor, axis = 0): Tensor {
  const b = backendOf('take', x, index);
  if (index.dtype !== 'int32') fail('take', `index must be int32, got ${index.dtype}${fmtShape(index.shape)}`);
  if (x.rank === 0) fail('take', 'cannot take from a scalar');
  const a = normAxis('take', axis, x.rank);
  const shape = [...x.shape.slice(0, a), ...index.shape, ...x.shape.slice(a + 1)];
  const out = wrap(b, b.take(x, index, a), x.dtype, shape);
  return record('take', [x, index], out, { axis: a });
}

/**
 * The adjoint of `take` (scatter-add): zeros of `shape` with each `src` element added at the
 * position `take(·, index, axis)` reads it from; repeated indices accumulate.
 */
export function takeAdjoint(src: Tensor, index: Tensor, axis: number, shape: readonly number[]): Tensor {
  const b = backendOf('takeAdjoint', src, index);
  if (index.dtype !== 'int32') fail('takeAdjoint', `index must be int32, got ${index.dtype}`);
  const s = checkShape('takeAdjoint', shape);
  const a = normAxis('takeAdjoint', axis, s.length);
  const expect = [...s.slice(0, a), ...index.shape, ...s.slice(a + 1)];
  if (expect.length !== src.rank || expect.some((d, i) => d !== src.shape[i])) {
    fail(
      'takeAdjoint',
      `src ${fmtShape(src.shape)} does not match take's result shape ${fmtShape(expect)} for index ${fmtShape(index.shape)} into ${fmtShape(s)}`,
    );
  }
  const out = wrap(b, b.takeAdjoint(s, index, src, a), src.dtype, s);
  return record('takeAdjoint', [src, index], out, { axis: a, shape: s });
}

export const scatterAdd = takeAdjoint;

/**
 * NumPy `take_along_axis`: `out[..., i, ...] = x[..., index[..., i, ...], ...]` where `index`
 * has `x`'s rank and matches it on every other axis. Built from `take` on the flattened tensor.
 */
export function takeAlongAxis(x: Tensor, index: Tensor, axis: number): Tensor {
  backendOf('takeAlongAxis', x, index);
  const a = normAxis('takeAlongAxis', axis, x.rank);
  if (index.rank !== x.rank || index.shape.some((d, i) => i !== a && d !== x.shape[i])) {
    fail('takeAlongAxis', `index ${fmtShape(index.shape)} must match x ${fmtShape(x.shape)} on every axis but ${a}`);
  }
  // flat position = Σ_{i≠a} pos_i·stride_i + index·stride_a (row-major strides of x.shape)
  const rowStrides: number[] = [];
  let acc = 1;
  for (let i = x.rank - 1; i >= 0; i--) {
    rowStrides[i] = acc;
    acc *= x.shape[i];
  }
  let flatIdx = mul(index, rowStrides[a]);
  for (let i = 0; i < x.rank; i++) {
    if (i === a || index.shape[i] === 1) continue;
    const pos = arange(0, index.shape[i] * rowStrides[i], rowStrides[i], { backend: x.backend });
    const shape = index.shape.map((_, j) => (j === i ? index.shape[i] : 1));
    const posR = reshape(pos, shape);
    const next = add(flatIdx, posR);
    release(flatIdx, pos, posR);
    flatIdx = next;
  }
  const flat = reshape(x, [x.size]);
  const out = take(flat, flatIdx, 0);
  release(flat, flatIdx);
  return out;
}

/** Joins tensors (same dtype and rank, equal except on `axis`) along `axis`. */
export function concat(xs: readonly Tensor[], axis = 0): Tensor {
  if (!xs || xs.length === 0) fail('concat', 'needs a non-empty array of tensors');
  const b = backendOf('concat', ...xs);
  const first = xs[0];
  const a = normAxis('concat', axis, first.rank);
  for (const x of xs) {
    if (x.dtype !== first.dtype) fail('concat', `dtype mismatch: ${first.dtype} and ${x.dtype}`);
    if (x.rank !== first.rank || x.shape.some((d, i) => i !== a && d !== first.shape[i])) {
      fail('concat', `shapes ${xs.map((t) => fmtShape(t.shape)).join(', ')} differ outside axis ${a}`);
    }
  }
  const shape = [...first.shape];
  shape[a] = xs.reduce((s, x) => s + x.shape[a], 0);
  const out = wrap(b, b.concat(xs, a, shape), first.dtype, shape);
  return record('concat', xs, out, { axis: a });
}

/** Stacks same-shaped tensors along a new axis. */
export function stack(xs: readonly Tensor[], axis = 0): Tensor {
  if (!xs || xs.length === 0) fail('stack', 'needs a non-empty array of tensors');
  const a = normAxis('stack', axis, xs[0].rank + 1);
  for (const x of xs) {
    if (x.rank !== xs[0].rank || x.shape.some((d, i) => d !== xs[0].shape[i])) {
      fail('stack', `shapes differ: ${xs.map((t) => fmtShape(t.shape)).join(', ')}`);
    }
  }
  const parts = xs.map((x) => {
    const s = [...x.shape];
    s.splice(a, 0, 1);
    return reshape(x, s);
  });
  const out = concat(parts, a);
  release(...parts);
  return out;
}
