import type { View } from '../../backend.js';
import { arrayFor, type TypedArray } from '../../dtype.js';
import { contiguousStrides, sizeOf } from '../../shape.js';
import { dataOf } from './storage.js';
import { offsets } from './strided.js';

/**
 * Softmax along `axis` of a strided view, computed in doubles (float32 rounds once on store).
 * Each line along `axis` starts at the offset of its index over the other axes, in the input
 * and in the contiguous output. Per line: the max (NaN wins), then e = exp(x − max) and their
 * sum, then e / sum — the composed max/sub/exp/sum/div with the same special values (NaN or
 * +Infinity in a line, or a line of only −Infinity, gives NaN throughout).
 */
export function softmax(x: View, axis: number): TypedArray {
  const shape = x.shape;
  const n = sizeOf(shape);
  const out = arrayFor(x.dtype, n);
  if (n === 0) return out;
  const data = dataOf('softmax', x);
  const L = shape.length === 0 ? 1 : shape[axis];
  const xs = shape.length === 0 ? 0 : x.strides[axis];
  const outStrides = contiguousStrides(shape);
  const ys = shape.length === 0 ? 0 : outStrides[axis];
  const others = shape.map((_, d) => d).filter((d) => d !== axis);
  const oShape = others.map((d) => shape[d]);
  const xStarts = offsets(
    oShape,
    others.map((d) => x.strides[d]),
    x.offset,
  );
  const yStarts = offsets(
    oShape,
    others.map((d) => outStrides[d]),
    0,
  );
  const e = new Float64Array(L);
  for (let r = 0; r < xStarts.length; r++) {
    const x0 = xStarts[r];
    let m = Number.NEGATIVE_INFINITY;
    for (let j = 0, p = x0; j < L; j++, p += xs) {
      const v = data[p];
      if (v > m) m = v;
      else if (Number.isNaN(v)) {
        m = v;
        break;
      }
    }
    let s = 0;
    for (let j = 0, p = x0; j < L; j++, p += xs) {
      const v = Math.exp(data[p] - m);
      e[j] = v;
      s += v;
    }
    const y0 = yStarts[r];
    for (let j = 0, q = y0; j < L; j++, q += ys) out[q] = e[j] / s;
  }
  return out;
}
