import { type DType, fail, fmtShape, isFloat, isTensor, type Tensor } from '@foxgate/tensor';

/** Throws `op: name must be a positive integer, got v` unless `v` is one. */
export function checkDim(op: string, name: string, v: unknown): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) fail(op, `${name} must be a positive integer, got ${String(v)}`);
}

/** `dtype[2,3]`, for messages. */
export function fmtTensor(t: Tensor): string {
  return `${t.dtype}${fmtShape(t.shape)}`;
}

/** Throws unless `t` is a live tensor; `name` names the argument (e.g. `x`, `p.w`). */
export function checkTensor(op: string, name: string, t: unknown): asserts t is Tensor {
  if (!isTensor(t)) fail(op, `${name} must be a Tensor, got ${t === null ? 'null' : Array.isArray(t) ? 'an array' : typeof t}`);
}

/** Throws unless `dtype` is a float dtype. */
export function checkFloat(op: string, name: string, dtype: DType): void {
  if (!isFloat(dtype)) fail(op, `${name} must be float32 or float64, got ${dtype}`);
}
