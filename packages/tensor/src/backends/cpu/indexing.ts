import type { View } from '../../backend.js';
import { arrayFor, type DType, isFloat, type TypedArray } from '../../dtype.js';
import { fail } from '../../errors.js';
import { sizeOf } from '../../shape.js';
import { contiguousOf, copyRun } from './strided.js';

/**
 * Gather along one axis and its adjoint (scatter-add), and concatenation. Everything is viewed
 * as `[outer, axis, inner]` in row-major order, so each index moves one run of `inner` elements.
 */

function checkIndices(op: string, idx: TypedArray, size: number, axis: number): void {
  for (let j = 0; j < idx.length; j++) {
    const v = idx[j];
    if (!(v >= 0 && v < size)) {
      fail(op, `index ${v} (at flat position ${j}) is out of range for axis ${axis} of size ${size}`);
    }
  }
}

export function take(x: View, index: View, axis: number): TypedArray {
  const len = x.shape[axis];
  const outer = sizeOf(x.shape.slice(0, axis));
  const inner = sizeOf(x.shape.slice(axis + 1));
  const idx = contiguousOf('take', index);
  checkIndices('take', idx, len, axis);
  const J = idx.length;
  const out = arrayFor(x.dtype, outer * J * inner);
  if (out.length === 0) return out;
  const xs = contiguousOf('take', x);
  for (let o = 0; o < outer; o++) {
    const src = o * len;
    const dst = o * J;
    if (inner === 1) {
      for (let j = 0; j < J; j++) out[dst + j] = xs[src + idx[j]];
    } else {
      for (let j = 0; j < J; j++) copyRun(xs, (src + idx[j]) * inner, out, (dst + j) * inner, inner);
    }
  }
  return out;
}

/**
 * Zero tensor of `shape` plus each `src` element at its `take` position. Floats accumulate in
 * doubles (float32 rounds once at the end); integers wrap; bool accumulates as logical or.
 */
export function takeAdjoint(shape: readonly number[], index: View, src: View, axis: number): TypedArray {
  const len = shape[axis];
  const outer = sizeOf(shape.slice(0, axis));
  const inner = sizeOf(shape.slice(axis + 1));
  const idx = contiguousOf('takeAdjoint', index);
  checkIndices('takeAdjoint', idx, len, axis);
  const J = idx.length;
  const dtype: DType = src.dtype;
  const n = sizeOf(shape);
  const acc: TypedArray = isFloat(dtype) ? new Float64Array(n) : dtype === 'uint32' ? new Uint32Array(n) : new Int32Array(n);
  const s = contiguousOf('takeAdjoint', src);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < J; j++) {
      const to = (o * len + idx[j]) * inner;
      const from = (o * J + j) * inner;
      for (let t = 0; t < inner; t++) acc[to + t] += s[from + t];
    }
  }
  if (dtype === 'float64' || dtype === 'int32' || dtype === 'uint32') return acc;
  const out = arrayFor(dtype, n);
  if (dtype === 'bool') for (let i = 0; i < n; i++) out[i] = acc[i] !== 0 ? 1 : 0;
  else out.set(acc);
  return out;
}

export function concat(xs: readonly View[], axis: number, outShape: readonly number[]): TypedArray {
  const out = arrayFor(xs[0].dtype, sizeOf(outShape));
  const outer = sizeOf(outShape.slice(0, axis));
  const inner = sizeOf(outShape.slice(axis + 1));
  const rowOut = outShape[axis] * inner;
  let at = 0;
  for (const x of xs) {
    const run = x.shape[axis] * inner;
    if (run > 0) {
      const xc = contiguousOf('concat', x);
      for (let o = 0; o < outer; o++) copyRun(xc, o * run, out, o * rowOut + at, run);
    }
    at += run;
  }
  return out;
}
