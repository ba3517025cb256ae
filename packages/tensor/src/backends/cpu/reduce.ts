import type { ReduceOp, View } from '../../backend.js';
import { arrayFor, type DType, isFloat, type TypedArray } from '../../dtype.js';
import { fail } from '../../errors.js';
import { dataOf } from './storage.js';
import { offsets, rows } from './strided.js';

/**
 * Reductions over any sorted set of axes of a strided view. The kept axes give one start offset
 * per output element; the reduced axes are walked as rows from there. Float sums accumulate in
 * doubles, pairwise within a row, so float32 sums of millions of elements stay accurate.
 */

/** Pairwise (cascade) sum of `n` elements `stride` apart, in doubles. */
export function pairwiseSum(d: TypedArray, start: number, n: number, stride: number): number {
  if (n <= 128) {
    let s0 = 0;
    let s1 = 0;
    let p = start;
    let i = 0;
    for (; i + 1 < n; i += 2, p += 2 * stride) {
      s0 += d[p];
      s1 += d[p + stride];
    }
    if (i < n) s0 += d[p];
    return s0 + s1;
  }
  const h = n >> 1;
  return pairwiseSum(d, start, h, stride) + pairwiseSum(d, start + h * stride, n - h, stride);
}

/** Output dtype of a reduction. */
export function reduceDtype(op: ReduceOp, dtype: DType): DType {
  if (op === 'argmax') return 'int32';
  if (op === 'sum' && dtype === 'bool') return 'int32';
  return dtype;
}

/** Identity of max/min for dtypes without infinities. */
function emptyValue(op: 'max' | 'min', dtype: DType): number {
  if (isFloat(dtype)) return op === 'max' ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  if (dtype === 'int32') return op === 'max' ? -2147483648 : 2147483647;
  if (dtype === 'uint32') return op === 'max' ? 0 : 4294967295;
  return op === 'max' ? 0 : 1;
}

export function reduce(op: ReduceOp, x: View, axes: readonly number[]): TypedArray {
  const data = dataOf(op, x);
  const rank = x.shape.length;
  const reduced = new Set(axes);
  const kept: number[] = [];
  for (let d = 0; d < rank; d++) if (!reduced.has(d)) kept.push(d);
  if (op === 'argmax' && axes.length !== 1) fail('argmax', `takes exactly one axis, got [${axes.join(',')}]`);
  const outDtype = reduceDtype(op, x.dtype);
  const starts = offsets(
    kept.map((d) => x.shape[d]),
    kept.map((d) => x.strides[d]),
    x.offset,
  );
  const inner = rows(
    axes.map((d) => x.shape[d]),
    axes.map((d) => x.strides[d]),
    0,
  );
  const out = arrayFor(outDtype, starts.length);
  if (op === 'sum') sumInto(data, x.dtype, starts, inner.starts, inner.n, inner.stride, out);
  else if (op === 'max' || op === 'min') extremumInto(op, data, x.dtype, starts, inner.starts, inner.n, inner.stride, out);
  else argmaxInto(data, starts, x.shape[axes[0]], x.strides[axes[0]], out);
  return out;
}

function sumInto(
  d: TypedArray,
  dtype: DType,
  starts: Float64Array,
  rowStarts: Float64Array,
  n: number,
  stride: number,
  out: TypedArray,
): void {
  const R = rowStarts.length;
  if (isFloat(dtype)) {
    for (let o = 0; o < starts.length; o++) {
      let acc = 0;
      for (let r = 0; r < R; r++) acc += pairwiseSum(d, starts[o] + rowStarts[r], n, stride);
      out[o] = acc;
    }
  } else if (dtype === 'uint32') {
    for (let o = 0; o < starts.length; o++) {
      let acc = 0;
      for (let r = 0; r < R; r++) {
        for (let i = 0, p = starts[o] + rowStarts[r]; i < n; i++, p += stride) acc = (acc + d[p]) >>> 0;
      }
      out[o] = acc;
    }
  } else {
    // int32 and bool: wrapping int32 accumulation.
    for (let o = 0; o < starts.length; o++) {
      let acc = 0;
      for (let r = 0; r < R; r++) {
        for (let i = 0, p = starts[o] + rowStarts[r]; i < n; i++, p += stride) acc = (acc + d[p]) | 0;
      }
      out[o] = acc;
    }
  }
}

function extremumInto(
  op: 'max' | 'min',
  d: TypedArray,
  dtype: DType,
  starts: Float64Array,
  rowStarts: Float64Array,
  n: number,
  stride: number,
  out: TypedArray,
): void {
  const R = rowStarts.length;
  const init = emptyValue(op, dtype);
  for (let o = 0; o < starts.length; o++) {
    let m = init;
    for (let r = 0; r < R && !Number.isNaN(m); r++) {
      let p = starts[o] + rowStarts[r];
      if (op === 'max') {
        for (let i = 0; i < n; i++, p += stride) {
          const v = d[p];
          if (v > m) m = v;
          else if (Number.isNaN(v)) {
            m = v;
            break;
          }
        }
      } else {
        for (let i = 0; i < n; i++, p += stride) {
          const v = d[p];
          if (v < m) m = v;
          else if (Number.isNaN(v)) {
            m = v;
            break;
          }
        }
      }
    }
    out[o] = m;
  }
}

/** First index of the maximum along one axis; NaN counts as larger than everything. */
function argmaxInto(d: TypedArray, starts: Float64Array, n: number, stride: number, out: TypedArray): void {
  for (let o = 0; o < starts.length; o++) {
    let best = Number.NEGATIVE_INFINITY;
    let at = 0;
    let p = starts[o];
    for (let i = 0; i < n; i++, p += stride) {
      const v = d[p];
      if (v > best) {
        best = v;
        at = i;
      } else if (Number.isNaN(v)) {
        at = i;
        break;
      }
    }
    out[o] = at;
  }
}
