import type { View } from '../../backend.js';
import { arrayFor, isFloat, type TypedArray } from '../../dtype.js';
import { sizeOf } from '../../shape.js';
import { dataOf } from './storage.js';
import { gatherInto } from './strided.js';

/**
 * Inclusive cumulative sum along `axis` (suffix sums when `reverse`). The input is gathered in
 * row-major order into a work array (doubles for floats, so float32 rounds once at the end;
 * int32 for int32/bool, wrapping; uint32 for uint32), then each slice along `axis` adds its
 * predecessor, vectorised over the trailing axes.
 */
export function cumsum(x: View, axis: number, reverse: boolean): TypedArray {
  const shape = x.shape;
  const n = sizeOf(shape);
  const len = shape[axis];
  const inner = sizeOf(shape.slice(axis + 1));
  const outer = sizeOf(shape.slice(0, axis));
  const work: TypedArray = isFloat(x.dtype) ? new Float64Array(n) : x.dtype === 'uint32' ? new Uint32Array(n) : new Int32Array(n);
  gatherInto(dataOf('cumsum', x), shape, x.strides, x.offset, work);
  const block = len * inner;
  for (let o = 0; o < outer; o++) {
    const base = o * block;
    if (!reverse) {
      for (let j = 1; j < len; j++) {
        const row = base + j * inner;
        for (let t = 0; t < inner; t++) work[row + t] += work[row - inner + t];
      }
    } else {
      for (let j = len - 2; j >= 0; j--) {
        const row = base + j * inner;
        for (let t = 0; t < inner; t++) work[row + t] += work[row + inner + t];
      }
    }
  }
  if (x.dtype === 'float64' || x.dtype === 'int32' || x.dtype === 'uint32') return work;
  const out = arrayFor(x.dtype, n);
  if (x.dtype === 'bool') for (let i = 0; i < n; i++) out[i] = work[i] !== 0 ? 1 : 0;
  else out.set(work);
  return out;
}
