import type { Backend, View } from '../backend.js';
import type { DType } from '../dtype.js';
import { fail, fmtShape } from '../errors.js';
import { getRecorder } from '../prims.js';
import { type Shape, sizeOf } from '../shape.js';
import { Tensor } from '../tensor.js';

/** Operands that ops accept: a tensor or a JS number (a scalar of the other operand's dtype). */
export type Operand = Tensor | number;

/** Checks that every input is a live tensor and all live on one backend; returns it. */
export function backendOf(op: string, ...xs: Tensor[]): Backend {
  let b: Backend | undefined;
  for (const x of xs) {
    if (!(x instanceof Tensor)) fail(op, `expected a Tensor, got ${describe(x)}`);
    x.assertAlive(op);
    if (b && x.backend !== b) {
      fail(op, `tensors live on different backends (${b.name} and ${x.backend.name}); move one with toBackend()`);
    }
    b = x.backend;
  }
  if (!b) fail(op, 'no tensor inputs');
  return b;
}

function describe(x: unknown): string {
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'an array (wrap it with tensor())';
  return typeof x;
}

/** Wraps a fresh kernel result as a tensor. */
export function wrap(backend: Backend, storage: import('../backend.js').Storage, dtype: DType, shape: Shape): Tensor {
  return new Tensor(backend, storage, dtype, shape);
}

/** A view of `x` with the same data at new shape/strides/offset (shares storage). */
export function viewOf(x: Tensor, shape: Shape, strides: readonly number[] | undefined, offset: number): Tensor {
  return new Tensor(x.backend, x.storage, x.dtype, shape, strides, offset);
}

/** A plain (untracked) broadcast view of `x` at `shape` for kernels: stride 0 on broadcast axes. */
export function broadcastView(x: View, shape: Shape): View {
  const n = shape.length;
  const k = x.shape.length;
  const strides = new Array<number>(n).fill(0);
  for (let i = 0; i < k; i++) {
    const d = x.shape[i];
    const target = shape[n - k + i];
    strides[n - k + i] = d === target && d !== 1 ? x.strides[i] : 0;
  }
  return { storage: x.storage, dtype: x.dtype, shape, strides, offset: x.offset };
}

export function requireDType(op: string, x: Tensor, allowed: readonly DType[], what = 'input'): void {
  if (!allowed.includes(x.dtype)) {
    fail(op, `${what} has dtype ${x.dtype}${fmtShape(x.shape)}; expected ${allowed.join(' or ')}`);
  }
}

export function numel(shape: Shape): number {
  return sizeOf(shape);
}

/**
 * Frees temporaries an op made for itself, unless a recorder (autograd) is active: then the
 * backward pass may still read them and the recording scope frees them instead.
 */
export function release(...ts: (Tensor | null | undefined)[]): void {
  if (getRecorder()) return;
  for (const t of ts) if (t && !t.isDisposed) t.dispose();
}
