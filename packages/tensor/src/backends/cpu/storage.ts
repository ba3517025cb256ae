import type { Storage, View } from '../../backend.js';
import type { DType, TypedArray } from '../../dtype.js';
import { fail } from '../../errors.js';

/** CPU memory: one typed array (`bool` as 0/1 bytes) that views index in elements. */
export class CpuStorage implements Storage {
  /** Set by `CpuBackend.free`; a freed storage is not counted in memory statistics. */
  freed = false;
  constructor(readonly data: TypedArray) {}
  get byteLength(): number {
    return this.data.byteLength;
  }
}

/** The typed array behind a view's storage (throws if the storage belongs to another backend). */
export function dataOf(op: string, v: View | Storage): TypedArray {
  const s = 'storage' in v ? v.storage : v;
  if (!(s instanceof CpuStorage)) fail(op, 'the cpu backend got a storage that belongs to another backend');
  return s.data;
}

/** Whether the typed array is the one `dtype` is stored in. */
export function holds(a: TypedArray, dtype: DType): boolean {
  switch (dtype) {
    case 'float32':
      return a instanceof Float32Array;
    case 'float64':
      return a instanceof Float64Array;
    case 'int32':
      return a instanceof Int32Array;
    case 'uint32':
      return a instanceof Uint32Array;
    case 'bool':
      return a instanceof Uint8Array;
  }
}
