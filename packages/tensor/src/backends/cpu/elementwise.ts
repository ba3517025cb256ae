import type { BinaryOp, UnaryOp, View } from '../../backend.js';
import { arrayFor, type DType, isFloat, type TypedArray } from '../../dtype.js';
import { fail } from '../../errors.js';
import { sizeOf } from '../../shape.js';
import { dataOf } from './storage.js';
import { contiguousOf, gatherInto } from './strided.js';

/**
 * Elementwise kernels. Inputs are first brought to row-major order (zero-copy when already
 * contiguous); each op then runs its own tight loop. Results are computed in doubles and stored
 * into the output's typed array, which rounds float32 and wraps int32/uint32.
 */

/** Numerically stable logistic function. */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** log(sigmoid(x)) = min(x, 0) − log1p(exp(−|x|)), stable for large |x|. */
export function logSigmoid(x: number): number {
  return Math.min(x, 0) - Math.log1p(Math.exp(-Math.abs(x)));
}

function sign(x: number): number {
  return x > 0 ? 1 : x < 0 ? -1 : x === 0 ? 0 : Number.NaN;
}

export function unary(op: UnaryOp, xv: View, outDtype: DType): TypedArray {
  const x = contiguousOf(op, xv);
  const n = x.length;
  const o = arrayFor(outDtype, n);
  switch (op) {
    case 'neg':
      for (let i = 0; i < n; i++) o[i] = -x[i];
      break;
    case 'abs':
      for (let i = 0; i < n; i++) o[i] = Math.abs(x[i]);
      break;
    case 'sign':
      for (let i = 0; i < n; i++) o[i] = sign(x[i]);
      break;
    case 'exp':
      for (let i = 0; i < n; i++) o[i] = Math.exp(x[i]);
      break;
    case 'log':
      for (let i = 0; i < n; i++) o[i] = Math.log(x[i]);
      break;
    case 'log1p':
      for (let i = 0; i < n; i++) o[i] = Math.log1p(x[i]);
      break;
    case 'sqrt':
      for (let i = 0; i < n; i++) o[i] = Math.sqrt(x[i]);
      break;
    case 'rsqrt':
      for (let i = 0; i < n; i++) o[i] = 1 / Math.sqrt(x[i]);
      break;
    case 'sin':
      for (let i = 0; i < n; i++) o[i] = Math.sin(x[i]);
      break;
    case 'cos':
      for (let i = 0; i < n; i++) o[i] = Math.cos(x[i]);
      break;
    case 'tanh':
      for (let i = 0; i < n; i++) o[i] = Math.tanh(x[i]);
      break;
    case 'sigmoid':
      for (let i = 0; i < n; i++) o[i] = sigmoid(x[i]);
      break;
    case 'logsigmoid':
      for (let i = 0; i < n; i++) o[i] = logSigmoid(x[i]);
      break;
    case 'relu':
      // Math.max keeps NaN and maps -0 to +0.
      for (let i = 0; i < n; i++) o[i] = Math.max(x[i], 0);
      break;
    case 'silu':
      for (let i = 0; i < n; i++) {
        const v = x[i];
        o[i] = v * sigmoid(v);
      }
      break;
    case 'floor':
      for (let i = 0; i < n; i++) o[i] = Math.floor(x[i]);
      break;
    case 'not':
      for (let i = 0; i < n; i++) o[i] = x[i] === 0 ? 1 : 0;
      break;
    default:
      fail('unary', `the cpu backend has no unary op '${op as string}'`);
  }
  return o;
}

export function binary(op: BinaryOp, av: View, bv: View, outShape: readonly number[], outDtype: DType): TypedArray {
  const a = contiguousOf(op, av);
  const b = contiguousOf(op, bv);
  const n = sizeOf(outShape);
  const o = arrayFor(outDtype, n);
  const float = isFloat(av.dtype);
  switch (op) {
    case 'add':
      for (let i = 0; i < n; i++) o[i] = a[i] + b[i];
      break;
    case 'sub':
      for (let i = 0; i < n; i++) o[i] = a[i] - b[i];
      break;
    case 'mul':
      if (float) for (let i = 0; i < n; i++) o[i] = a[i] * b[i];
      // Integer products wrap modulo 2^32 (a double product would lose the low bits first).
      else for (let i = 0; i < n; i++) o[i] = Math.imul(a[i], b[i]);
      break;
    case 'div':
      if (float) for (let i = 0; i < n; i++) o[i] = a[i] / b[i];
      // Integer division truncates toward zero; x/0 stores 0.
      else for (let i = 0; i < n; i++) o[i] = Math.trunc(a[i] / b[i]);
      break;
    case 'pow':
      for (let i = 0; i < n; i++) o[i] = a[i] ** b[i];
      break;
    case 'maximum':
      for (let i = 0; i < n; i++) o[i] = Math.max(a[i], b[i]);
      break;
    case 'minimum':
      for (let i = 0; i < n; i++) o[i] = Math.min(a[i], b[i]);
      break;
    case 'lt':
      for (let i = 0; i < n; i++) o[i] = a[i] < b[i] ? 1 : 0;
      break;
    case 'le':
      for (let i = 0; i < n; i++) o[i] = a[i] <= b[i] ? 1 : 0;
      break;
    case 'gt':
      for (let i = 0; i < n; i++) o[i] = a[i] > b[i] ? 1 : 0;
      break;
    case 'ge':
      for (let i = 0; i < n; i++) o[i] = a[i] >= b[i] ? 1 : 0;
      break;
    case 'eq':
      for (let i = 0; i < n; i++) o[i] = a[i] === b[i] ? 1 : 0;
      break;
    case 'ne':
      for (let i = 0; i < n; i++) o[i] = a[i] !== b[i] ? 1 : 0;
      break;
    case 'and':
      if (float) for (let i = 0; i < n; i++) o[i] = a[i] !== 0 && b[i] !== 0 ? 1 : 0;
      else for (let i = 0; i < n; i++) o[i] = a[i] & b[i];
      break;
    case 'or':
      if (float) for (let i = 0; i < n; i++) o[i] = a[i] !== 0 || b[i] !== 0 ? 1 : 0;
      else for (let i = 0; i < n; i++) o[i] = a[i] | b[i];
      break;
    default:
      fail('binary', `the cpu backend has no binary op '${op as string}'`);
  }
  if (outDtype === 'bool' && op !== 'and' && op !== 'or' && !isCompare(op)) toBool(o);
  return o;
}

function isCompare(op: BinaryOp): boolean {
  return op === 'lt' || op === 'le' || op === 'gt' || op === 'ge' || op === 'eq' || op === 'ne';
}

/** Normalises bytes to 0/1 in place (arithmetic on bool must stay bool). */
function toBool(o: TypedArray): void {
  for (let i = 0; i < o.length; i++) o[i] = o[i] !== 0 ? 1 : 0;
}

export function where(cv: View, av: View, bv: View, outShape: readonly number[]): TypedArray {
  const c = contiguousOf('where', cv);
  const a = contiguousOf('where', av);
  const b = contiguousOf('where', bv);
  const n = sizeOf(outShape);
  const o = arrayFor(av.dtype, n);
  for (let i = 0; i < n; i++) o[i] = c[i] !== 0 ? a[i] : b[i];
  return o;
}

const I32_MAX = 2147483647;
const I32_MIN = -2147483648;
const U32_MAX = 4294967295;

/**
 * Converts `x` to `dtype`. float→int truncates toward zero, maps NaN to 0 and saturates out of
 * range (as WGSL does); int32↔uint32 wraps; →bool is `x != 0` (NaN is true); bool→number is 0/1.
 */
export function cast(xv: View, dtype: DType): TypedArray {
  const n = sizeOf(xv.shape);
  const o = arrayFor(dtype, n);
  if (dtype === 'bool') {
    const x = contiguousOf('cast', xv);
    for (let i = 0; i < n; i++) o[i] = x[i] !== 0 ? 1 : 0;
  } else if (isFloat(xv.dtype) && dtype === 'int32') {
    const x = contiguousOf('cast', xv);
    for (let i = 0; i < n; i++) {
      const v = x[i];
      o[i] = Number.isNaN(v) ? 0 : Math.min(Math.max(v, I32_MIN), I32_MAX);
    }
  } else if (isFloat(xv.dtype) && dtype === 'uint32') {
    const x = contiguousOf('cast', xv);
    for (let i = 0; i < n; i++) {
      const v = x[i];
      o[i] = Number.isNaN(v) || v <= 0 ? 0 : Math.min(v, U32_MAX);
    }
  } else {
    // Typed-array stores do the rest: rounding to float32, int32↔uint32 wrapping, bool 0/1.
    gatherInto(dataOf('cast', xv), xv.shape, xv.strides, xv.offset, o);
  }
  return o;
}
