import type { View } from '../../backend.js';
import { arrayFor, type TypedArray } from '../../dtype.js';
import { isContiguous, sizeOf } from '../../shape.js';
import { dataOf } from './storage.js';

/**
 * Strided index spaces. Kernels walk a view as "rows": the start offset of every row (row-major
 * over all but the last dimension) and a tight inner loop of `n` elements `stride` apart. Size-1
 * dimensions are dropped and neighbours that step through memory as one are merged first, so a
 * contiguous view is one long row.
 */

/** Shape and strides without size-1 dims and with mergeable neighbours merged (same order). */
export function coalesce(shape: readonly number[], strides: readonly number[]): { shape: number[]; strides: number[] } {
  const s: number[] = [];
  const st: number[] = [];
  for (let d = 0; d < shape.length; d++) {
    const n = shape[d];
    if (n === 1) continue;
    const k = s.length - 1;
    if (k >= 0 && st[k] === strides[d] * n) {
      s[k] *= n;
      st[k] = strides[d];
    } else {
      s.push(n);
      st.push(strides[d]);
    }
  }
  return { shape: s, strides: st };
}

/** The rows of a strided index space: each row starts at `starts[r]` and has `n` elements `stride` apart. */
export interface Rows {
  starts: Float64Array;
  n: number;
  stride: number;
}

export function rows(shape: readonly number[], strides: readonly number[], offset: number): Rows {
  if (sizeOf(shape) === 0) return { starts: new Float64Array(0), n: 0, stride: 0 };
  const c = coalesce(shape, strides);
  const r = c.shape.length;
  if (r === 0) return { starts: Float64Array.of(offset), n: 1, stride: 0 };
  const os = c.shape.slice(0, r - 1);
  const ost = c.strides.slice(0, r - 1);
  const count = sizeOf(os);
  const starts = new Float64Array(count);
  const idx = new Array<number>(r - 1).fill(0);
  let off = offset;
  for (let i = 0; i < count; i++) {
    starts[i] = off;
    for (let d = r - 2; d >= 0; d--) {
      off += ost[d];
      if (++idx[d] < os[d]) break;
      off -= ost[d] * os[d];
      idx[d] = 0;
    }
  }
  return { starts, n: c.shape[r - 1], stride: c.strides[r - 1] };
}

/** The offset of every element of a strided index space, in row-major order. */
export function offsets(shape: readonly number[], strides: readonly number[], offset: number): Float64Array {
  const { starts, n, stride } = rows(shape, strides, offset);
  const out = new Float64Array(starts.length * n);
  let o = 0;
  for (let r = 0; r < starts.length; r++) {
    for (let i = 0, p = starts[r]; i < n; i++, p += stride) out[o++] = p;
  }
  return out;
}

/** Copies `n` elements `src[s..]` to `dst[d..]`; the store converts as typed arrays do. */
export function copyRun(src: TypedArray, s: number, dst: TypedArray, d: number, n: number): void {
  if (n >= 64) {
    dst.set(src.subarray(s, s + n), d);
  } else {
    for (let i = 0; i < n; i++) dst[d + i] = src[s + i];
  }
}

/** Writes the elements of a strided index space of `src` to `dst` from `at` on, row-major. */
export function gatherInto(
  src: TypedArray,
  shape: readonly number[],
  strides: readonly number[],
  offset: number,
  dst: TypedArray,
  at = 0,
): void {
  const { starts, n, stride } = rows(shape, strides, offset);
  let o = at;
  if (stride === 1) {
    for (let r = 0; r < starts.length; r++, o += n) copyRun(src, starts[r], dst, o, n);
    return;
  }
  for (let r = 0; r < starts.length; r++) {
    for (let i = 0, p = starts[r]; i < n; i++, p += stride) dst[o++] = src[p];
  }
}

/**
 * The elements of `x` in row-major order, as the typed array of its dtype: a zero-copy subarray
 * when the view is already contiguous, a fresh copy otherwise. Callers must not write to it.
 */
export function contiguousOf(op: string, x: View): TypedArray {
  const data = dataOf(op, x);
  const n = sizeOf(x.shape);
  if (isContiguous(x.shape, x.strides)) return data.subarray(x.offset, x.offset + n);
  const out = arrayFor(x.dtype, n);
  gatherInto(data, x.shape, x.strides, x.offset, out);
  return out;
}

/** `x` copied into a fresh contiguous typed array of its dtype. */
export function copyOf(op: string, x: View): TypedArray {
  const out = arrayFor(x.dtype, sizeOf(x.shape));
  gatherInto(dataOf(op, x), x.shape, x.strides, x.offset, out);
  return out;
}
