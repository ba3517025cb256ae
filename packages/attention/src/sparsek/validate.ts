import { fail, fmtShape, isTensor, type Tensor } from '@foxgate/tensor';

/** Argument checks of `sparsek` and `sparsekAttention`: one FoxgateError line each. */

export function describe(x: unknown): string {
  if (isTensor(x)) return `${x.dtype}${fmtShape(x.shape)}`;
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'an array (wrap it with tensor())';
  return typeof x;
}

/** A live float32/float64 tensor of rank ≥ 1 (the argument `name` of `op`). */
export function checkFloat(op: string, name: string, x: unknown): Tensor {
  if (!isTensor(x)) fail(op, `${name} must be a Tensor, got ${describe(x)}`);
  x.assertAlive(op);
  if (x.dtype !== 'float32' && x.dtype !== 'float64') fail(op, `${name} must be float32 or float64, got ${x.dtype}${fmtShape(x.shape)}`);
  return x;
}

/** The sparsity budget: a number > 0, or one per row (`rows` of them, each > 0). Returns per-row values. */
export type SparsekBudget = number | readonly number[] | Int32Array | Float64Array | Float32Array;

export function checkBudget(op: string, name: string, k: unknown, rows: number): Float64Array {
  const bad = (v: unknown) => typeof v !== 'number' || !Number.isFinite(v) || v <= 0;
  if (typeof k === 'number') {
    if (bad(k)) fail(op, `${name} must be a finite number > 0, got ${String(k)}`);
    return new Float64Array(rows).fill(k);
  }
  const isArr = Array.isArray(k) || k instanceof Int32Array || k instanceof Float64Array || k instanceof Float32Array;
  if (!isArr) fail(op, `${name} must be a number > 0 or one integer per row, got ${describe(k)}`);
  const a = k as ArrayLike<number>;
  if (a.length !== rows) fail(op, `${name} has ${a.length} entries but the input has ${rows} rows (one k per row)`);
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const v = a[r];
    if (bad(v) || !Number.isInteger(v)) fail(op, `${name}[${r}] must be an integer > 0, got ${String(v)}`);
    out[r] = v;
  }
  return out;
}

export function checkImpl(op: string, impl: unknown): 'fused' | 'reference' {
  if (impl === undefined) return 'fused';
  if (impl !== 'fused' && impl !== 'reference') fail(op, `opts.impl must be 'fused' or 'reference', got ${JSON.stringify(impl)}`);
  return impl;
}

export function checkOpts(op: string, opts: unknown): void {
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) fail(op, `opts must be an object, got ${describe(opts)}`);
}
