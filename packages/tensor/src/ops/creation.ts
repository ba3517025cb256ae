import type { Backend } from '../backend.js';
import { arrayFor, checkDType, type DType, dtypeOfArray, type TypedArray } from '../dtype.js';
import { fail, fmtShape } from '../errors.js';
import { getBackend } from '../registry.js';
import { checkShape, type Shape, sizeOf } from '../shape.js';
import type { NestedArray, Tensor } from '../tensor.js';
import { binaryOp } from './elementwise.js';
import { release, wrap } from './util.js';

export interface CreateOptions {
  dtype?: DType;
  /** Backend name or object; default: the default backend (`setDefaultBackend`). */
  backend?: string | Backend;
}

/** Shape of a nested JS array, checking it is rectangular. */
function inferShape(data: NestedArray): number[] {
  const shape: number[] = [];
  let cur: NestedArray = data;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    cur = cur[0] as NestedArray;
  }
  return shape;
}

function flatten(data: NestedArray, shape: number[], out: number[], dim = 0): void {
  if (dim === shape.length) {
    if (Array.isArray(data)) fail('tensor', 'ragged nested array (more nesting than the first element has)');
    out.push(typeof data === 'boolean' ? Number(data) : (data as number));
    return;
  }
  if (!Array.isArray(data) || data.length !== shape[dim]) {
    fail('tensor', `ragged nested array: expected ${shape[dim]} elements at depth ${dim}`);
  }
  for (const d of data) flatten(d, shape, out, dim + 1);
}

/**
 * A tensor from a typed array or nested JS array. `shape` defaults to the nested array's shape
 * (or `[n]` for typed arrays); the dtype defaults to the typed array's, or float32 (bool for
 * nested booleans).
 */
export function tensor(data: TypedArray | NestedArray, shape?: readonly number[], opts: CreateOptions = {}): Tensor {
  const backend = getBackend(opts.backend);
  let values: TypedArray | number[];
  let inferred: number[];
  let dtype: DType;
  if (ArrayBuffer.isView(data)) {
    values = data as TypedArray;
    inferred = [values.length];
    dtype = opts.dtype ?? dtypeOfArray(values);
  } else {
    inferred = inferShape(data);
    const flat: number[] = [];
    flatten(data, inferred, flat);
    values = flat;
    let first: NestedArray = data;
    while (Array.isArray(first)) first = first[0] as NestedArray;
    dtype = opts.dtype ?? (typeof first === 'boolean' ? 'bool' : 'float32');
  }
  checkDType('tensor', dtype);
  const finalShape = shape ? checkShape('tensor', shape) : inferred;
  if (sizeOf(finalShape) !== values.length) {
    fail('tensor', `${values.length} values do not fill shape ${fmtShape(finalShape)} (${sizeOf(finalShape)} elements)`);
  }
  const arr = arrayFor(dtype, values.length);
  if (dtype === 'bool') {
    const n = values.length;
    const src = values as ArrayLike<number>;
    for (let i = 0; i < n; i++) arr[i] = src[i] ? 1 : 0;
  } else arr.set(values as ArrayLike<number>);
  return wrap(backend, backend.upload(arr, dtype), dtype, finalShape);
}

/** A scalar (rank-0) tensor. */
export function scalar(value: number, opts: CreateOptions = {}): Tensor {
  return full([], value, opts);
}

export function full(shape: readonly number[], value: number, opts: CreateOptions = {}): Tensor {
  const s = checkShape('full', shape);
  const dtype = checkDType('full', opts.dtype ?? 'float32');
  const backend = getBackend(opts.backend);
  return wrap(backend, backend.fill(sizeOf(s), value, dtype), dtype, s);
}

export function zeros(shape: readonly number[], opts: CreateOptions = {}): Tensor {
  return full(shape, 0, opts);
}

export function ones(shape: readonly number[], opts: CreateOptions = {}): Tensor {
  return full(shape, 1, opts);
}

export function zerosLike(x: Tensor, dtype: DType = x.dtype): Tensor {
  return full(x.shape, 0, { dtype, backend: x.backend });
}

export function onesLike(x: Tensor, dtype: DType = x.dtype): Tensor {
  return full(x.shape, 1, { dtype, backend: x.backend });
}

export function fullLike(x: Tensor, value: number, dtype: DType = x.dtype): Tensor {
  return full(x.shape, value, { dtype, backend: x.backend });
}

/** `[start, start+step, ...)` up to (excluding) `stop`; `arange(n)` is `0..n-1`. Default dtype int32. */
export function arange(start: number, stop?: number, step = 1, opts: CreateOptions = {}): Tensor {
  if (stop === undefined) {
    stop = start;
    start = 0;
  }
  if (step === 0 || !Number.isFinite(step)) fail('arange', `step must be a non-zero finite number, got ${step}`);
  const n = Math.max(0, Math.ceil((stop - start) / step));
  const dtype = opts.dtype ?? 'int32';
  const arr = arrayFor(dtype, n);
  for (let i = 0; i < n; i++) arr[i] = start + i * step;
  const backend = getBackend(opts.backend);
  return wrap(backend, backend.upload(arr, dtype), dtype, [n]);
}

/** `n × m` identity (ones on the diagonal `k`). */
export function eye(n: number, m = n, opts: CreateOptions & { k?: number } = {}): Tensor {
  const dtype = opts.dtype ?? 'float32';
  const arr = arrayFor(dtype, n * m);
  const k = opts.k ?? 0;
  for (let i = 0; i < n; i++) if (i + k >= 0 && i + k < m) arr[i * m + i + k] = 1;
  const backend = getBackend(opts.backend);
  return wrap(backend, backend.upload(arr, dtype), dtype, [n, m]);
}

function triMask(op: string, n: number, m: number, k: number, lower: boolean, opts: CreateOptions): Tensor {
  checkShape(op, [n, m]);
  const dtype = opts.dtype ?? 'bool';
  const arr = arrayFor(dtype, n * m);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < m; j++) {
      const inside = lower ? j - i <= k : j - i >= k;
      if (inside) arr[i * m + j] = 1;
    }
  const backend = getBackend(opts.backend);
  return wrap(backend, backend.upload(arr, dtype), dtype, [n, m]);
}

/** Lower-triangular mask: true where `j − i ≤ k` (dtype bool unless given). */
export function trilMask(n: number, m = n, k = 0, opts: CreateOptions = {}): Tensor {
  return triMask('trilMask', n, m, k, true, opts);
}

/** Upper-triangular mask: true where `j − i ≥ k`. */
export function triuMask(n: number, m = n, k = 0, opts: CreateOptions = {}): Tensor {
  return triMask('triuMask', n, m, k, false, opts);
}

/** Zeroes the elements above diagonal `k` of the last two axes. */
export function tril(x: Tensor, k = 0): Tensor {
  return applyTri(x, trilMask(x.shape[x.rank - 2], x.shape[x.rank - 1], k, { backend: x.backend, dtype: x.dtype }));
}

/** Zeroes the elements below diagonal `k` of the last two axes. */
export function triu(x: Tensor, k = 0): Tensor {
  return applyTri(x, triuMask(x.shape[x.rank - 2], x.shape[x.rank - 1], k, { backend: x.backend, dtype: x.dtype }));
}

function applyTri(x: Tensor, mask: Tensor): Tensor {
  if (x.rank < 2) fail('tril/triu', `needs rank >= 2, got shape ${fmtShape(x.shape)}`);
  const out = binaryOp('mul', x, mask);
  release(mask);
  return out;
}

/** Copies `x` to another backend (asynchronous: reads the data back first). */
export async function toBackend(x: Tensor, backend: string | Backend): Promise<Tensor> {
  const b = getBackend(backend);
  const data = await x.data();
  return wrap(b, b.upload(data, x.dtype), x.dtype, x.shape as Shape);
}
