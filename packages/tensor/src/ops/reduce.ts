import type { ReduceOp } from '../backend.js';
import { isFloat } from '../dtype.js';
import { fail, fmtShape } from '../errors.js';
import { record } from '../prims.js';
import { normAxes, normAxis } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { backendOf, wrap } from './util.js';

export type Axes = number | readonly number[] | undefined;

function reduceShape(shape: readonly number[], axes: readonly number[], keepdims: boolean): number[] {
  return keepdims ? shape.map((d, i) => (axes.includes(i) ? 1 : d)) : shape.filter((_, i) => !axes.includes(i));
}

function reduceOp(op: 'sum' | 'max' | 'min', x: Tensor, axes: Axes, keepdims: boolean): Tensor {
  const b = backendOf(op, x);
  const list = normAxes(op, axes, x.rank);
  if (op !== 'sum' && list.some((a) => x.shape[a] === 0) && !isFloat(x.dtype)) {
    fail(op, `cannot reduce an empty axis of ${x.dtype}${fmtShape(x.shape)} (no identity for integers)`);
  }
  if (x.dtype === 'bool' && op !== 'sum') fail(op, `does not take bool tensors; cast first`);
  const outDtype = op === 'sum' && x.dtype === 'bool' ? 'int32' : x.dtype;
  const out = wrap(b, b.reduce(op as ReduceOp, x, list), outDtype, reduceShape(x.shape, list, keepdims));
  return record(op, [x], out, { axes: list, keepdims });
}

/** Sum over `axes` (default all). bool sums to int32. */
export function sum(x: Tensor, axes?: Axes, keepdims = false): Tensor {
  return reduceOp('sum', x, axes, keepdims);
}

export function max(x: Tensor, axes?: Axes, keepdims = false): Tensor {
  return reduceOp('max', x, axes, keepdims);
}

export function min(x: Tensor, axes?: Axes, keepdims = false): Tensor {
  return reduceOp('min', x, axes, keepdims);
}

/** Index of the first maximum along `axis` (int32). */
export function argmax(x: Tensor, axis = -1, keepdims = false): Tensor {
  const b = backendOf('argmax', x);
  const a = normAxis('argmax', axis, x.rank);
  if (x.rank === 0) fail('argmax', 'needs a tensor of rank >= 1');
  if (x.shape[a] === 0) fail('argmax', `axis ${a} of ${fmtShape(x.shape)} is empty`);
  if (x.dtype === 'bool') fail('argmax', 'does not take bool tensors; cast first');
  const out = wrap(b, b.reduce('argmax', x, [a]), 'int32', reduceShape(x.shape, [a], keepdims));
  return record('argmax', [x], out, { axis: a, keepdims });
}
