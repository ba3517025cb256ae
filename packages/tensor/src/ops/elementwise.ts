import { type BinaryOp, COMPARE_OPS, type UnaryOp } from '../backend.js';
import { checkDType, type DType, isFloat } from '../dtype.js';
import { fail, fmtShape } from '../errors.js';
import { record } from '../prims.js';
import { broadcastShapes } from '../shape.js';
import { Tensor } from '../tensor.js';
import { backendOf, broadcastView, type Operand, release, wrap } from './util.js';

const FLOAT_ONLY_UNARY: ReadonlySet<UnaryOp> = new Set([
  'exp',
  'log',
  'log1p',
  'sqrt',
  'rsqrt',
  'sin',
  'cos',
  'tanh',
  'sigmoid',
  'logsigmoid',
  'silu',
]);

/** Runs a unary primitive (checked and recorded). */
export function unaryOp(op: UnaryOp, x: Tensor): Tensor {
  const b = backendOf(op, x);
  if (op === 'not') {
    if (x.dtype !== 'bool') fail(op, `needs a bool tensor, got ${x.dtype}${fmtShape(x.shape)}`);
  } else if (x.dtype === 'bool') {
    fail(op, `does not take bool tensors (got bool${fmtShape(x.shape)}); cast first`);
  } else if (FLOAT_ONLY_UNARY.has(op) && !isFloat(x.dtype)) {
    fail(op, `needs a float tensor, got ${x.dtype}${fmtShape(x.shape)}; cast first`);
  }
  const out = wrap(b, b.unary(op, x, x.dtype), x.dtype, x.shape);
  return record(op, [x], out, {});
}

/** Turns a number operand into a scalar tensor of the other operand's dtype and backend. */
function asTensor(op: string, v: Operand, like: Tensor): Tensor {
  if (v instanceof Tensor) return v;
  if (typeof v !== 'number') fail(op, `expected a Tensor or number, got ${typeof v}`);
  const b = like.backend;
  return wrap(b, b.fill(1, v, like.dtype), like.dtype, []);
}

/**
 * Scalars made from numbers are constants owned by the op: freed at once, unless a recorder
 * (autograd) may still need them for a backward pass; then the recording scope frees them.
 */
function releaseScalars(made: Tensor[], given: Operand[]): void {
  for (let i = 0; i < made.length; i++) if (made[i] !== given[i]) release(made[i]);
}

const LOGICAL: ReadonlySet<BinaryOp> = new Set(['and', 'or']);

/** Runs a binary primitive with NumPy broadcasting (checked and recorded). */
export function binaryOp(op: BinaryOp, a: Operand, b: Operand): Tensor {
  if (!(a instanceof Tensor) && !(b instanceof Tensor)) fail(op, 'needs at least one Tensor operand');
  const ta = asTensor(op, a, (a instanceof Tensor ? a : b) as Tensor);
  const tb = asTensor(op, b, ta);
  const backend = backendOf(op, ta, tb);
  if (ta.dtype !== tb.dtype) {
    fail(op, `dtype mismatch: ${ta.dtype}${fmtShape(ta.shape)} and ${tb.dtype}${fmtShape(tb.shape)}; cast one first`);
  }
  const dtype = ta.dtype;
  if (LOGICAL.has(op)) {
    if (dtype !== 'bool') fail(op, `needs bool tensors, got ${dtype}`);
  } else if (dtype === 'bool' && !(op === 'eq' || op === 'ne')) {
    fail(op, `does not take bool tensors (got bool${fmtShape(ta.shape)} and bool${fmtShape(tb.shape)}); cast first`);
  }
  if (op === 'pow' && !isFloat(dtype)) fail(op, `needs float tensors, got ${dtype}`);
  const shape = broadcastShapes(op, ta.shape, tb.shape);
  const outDtype: DType = COMPARE_OPS.includes(op) ? 'bool' : dtype;
  const storage = backend.binary(op, broadcastView(ta, shape), broadcastView(tb, shape), shape, outDtype);
  const out = wrap(backend, storage, outDtype, shape);
  record(op, [ta, tb], out, {});
  releaseScalars([ta, tb], [a, b]);
  return out;
}

/** `cond ? a : b` with broadcasting over all three; `cond` is bool. */
export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  const like = a instanceof Tensor ? a : b instanceof Tensor ? b : null;
  if (!like) fail('where', 'needs at least one Tensor among a and b');
  const ta = asTensor('where', a, like);
  const tb = asTensor('where', b, like);
  const backend = backendOf('where', cond, ta, tb);
  if (cond.dtype !== 'bool') fail('where', `condition must be bool, got ${cond.dtype}${fmtShape(cond.shape)}`);
  if (ta.dtype !== tb.dtype) fail('where', `dtype mismatch between branches: ${ta.dtype} and ${tb.dtype}`);
  const shape = broadcastShapes('where', broadcastShapes('where', cond.shape, ta.shape), tb.shape);
  const storage = backend.where(broadcastView(cond, shape), broadcastView(ta, shape), broadcastView(tb, shape), shape);
  const out = wrap(backend, storage, ta.dtype, shape);
  record('where', [cond, ta, tb], out, {});
  releaseScalars([ta, tb], [a, b]);
  return out;
}

/** Converts to `dtype` (float→int truncates toward zero; →bool is `x != 0`). */
export function cast(x: Tensor, dtype: DType): Tensor {
  const b = backendOf('cast', x);
  checkDType('cast', dtype);
  const out = wrap(b, x.dtype === dtype ? b.copy(x) : b.cast(x, dtype), dtype, x.shape);
  return record('cast', [x], out, { dtype });
}

// ---- named unary ops ---------------------------------------------------------------------------
export const neg = (x: Tensor) => unaryOp('neg', x);
export const abs = (x: Tensor) => unaryOp('abs', x);
export const sign = (x: Tensor) => unaryOp('sign', x);
export const exp = (x: Tensor) => unaryOp('exp', x);
export const log = (x: Tensor) => unaryOp('log', x);
export const log1p = (x: Tensor) => unaryOp('log1p', x);
export const sqrt = (x: Tensor) => unaryOp('sqrt', x);
export const rsqrt = (x: Tensor) => unaryOp('rsqrt', x);
export const sin = (x: Tensor) => unaryOp('sin', x);
export const cos = (x: Tensor) => unaryOp('cos', x);
export const tanh = (x: Tensor) => unaryOp('tanh', x);
export const sigmoid = (x: Tensor) => unaryOp('sigmoid', x);
/** Numerically stable log(sigmoid(x)). */
export const logsigmoid = (x: Tensor) => unaryOp('logsigmoid', x);
export const relu = (x: Tensor) => unaryOp('relu', x);
export const silu = (x: Tensor) => unaryOp('silu', x);
export const floor = (x: Tensor) => unaryOp('floor', x);
export const logicalNot = (x: Tensor) => unaryOp('not', x);

// ---- named binary ops --------------------------------------------------------------------------
export const add = (a: Operand, b: Operand) => binaryOp('add', a, b);
export const sub = (a: Operand, b: Operand) => binaryOp('sub', a, b);
export const mul = (a: Operand, b: Operand) => binaryOp('mul', a, b);
export const div = (a: Operand, b: Operand) => binaryOp('div', a, b);
export const pow = (a: Operand, b: Operand) => binaryOp('pow', a, b);
export const maximum = (a: Operand, b: Operand) => binaryOp('maximum', a, b);
export const minimum = (a: Operand, b: Operand) => binaryOp('minimum', a, b);
export const lt = (a: Operand, b: Operand) => binaryOp('lt', a, b);
export const le = (a: Operand, b: Operand) => binaryOp('le', a, b);
export const gt = (a: Operand, b: Operand) => binaryOp('gt', a, b);
export const ge = (a: Operand, b: Operand) => binaryOp('ge', a, b);
export const eq = (a: Operand, b: Operand) => binaryOp('eq', a, b);
export const ne = (a: Operand, b: Operand) => binaryOp('ne', a, b);
export const logicalAnd = (a: Operand, b: Operand) => binaryOp('and', a, b);
export const logicalOr = (a: Operand, b: Operand) => binaryOp('or', a, b);
