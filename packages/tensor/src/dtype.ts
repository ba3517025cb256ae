import { fail } from './errors.js';

/** Element types. `float64` exists on the CPU backend only (references, gradient checks). */
export type DType = 'float32' | 'float64' | 'int32' | 'uint32' | 'bool';
export const DTYPES: readonly DType[] = ['float32', 'float64', 'int32', 'uint32', 'bool'];

export type TypedArray = Float32Array | Float64Array | Int32Array | Uint32Array | Uint8Array;

/** The typed array a dtype reads back as (`bool` reads back as 0/1 bytes). */
export interface TypedArrayOf {
  float32: Float32Array;
  float64: Float64Array;
  int32: Int32Array;
  uint32: Uint32Array;
  bool: Uint8Array;
}

export function isFloat(d: DType): boolean {
  return d === 'float32' || d === 'float64';
}

export function itemSize(d: DType): number {
  switch (d) {
    case 'float64':
      return 8;
    case 'bool':
      return 1;
    default:
      return 4;
  }
}

export function arrayFor(d: DType, n: number): TypedArray {
  switch (d) {
    case 'float32':
      return new Float32Array(n);
    case 'float64':
      return new Float64Array(n);
    case 'int32':
      return new Int32Array(n);
    case 'uint32':
      return new Uint32Array(n);
    case 'bool':
      return new Uint8Array(n);
  }
}

/** The dtype a typed array holds by default. */
export function dtypeOfArray(a: TypedArray): DType {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof Uint32Array) return 'uint32';
  return 'bool';
}

export function checkDType(op: string, d: unknown): DType {
  if (typeof d !== 'string' || !(DTYPES as readonly string[]).includes(d)) {
    fail(op, `unknown dtype ${JSON.stringify(d)} (expected one of ${DTYPES.join(', ')})`);
  }
  return d as DType;
}
