import type { Storage, View } from '../../../backend.js';
import type { DType } from '../../../dtype.js';
import { fail } from '../../../errors.js';
import { sizeOf } from '../../../shape.js';
import { type Engine, GpuStorage } from '../engine.js';
import { foldGrid, WG } from '../wgsl.js';

/** The GPU storage behind a view or storage (throws for another backend's storage). */
export function gpuOf(op: string, v: View | Storage): GpuStorage {
  const s = 'storage' in v ? (v as View).storage : v;
  if (!(s instanceof GpuStorage)) fail(op, 'the webgpu backend got a storage that belongs to another backend');
  if (s.freed) fail(op, 'the webgpu backend got a storage that was already freed');
  return s;
}

/** Rejects float64 (the GPU has no 64-bit floats). */
export function checkGpuDType(op: string, dtype: DType): void {
  if (dtype === 'float64') fail(op, 'float64 is only supported on the cpu backend');
}

/** A fresh storage for `n` elements of a 32-bit GPU type (bool included). */
export function allocElems(e: Engine, n: number): GpuStorage {
  return e.alloc(n * 4);
}

/** Grid for `threads` threads of `WG`-sized 1-D workgroups, folded beyond 65,535 groups. */
export function grid1d(threads: number, wg = WG): { groups: number; workgroups: [number, number, number] } {
  const groups = Math.ceil(threads / wg);
  return { groups, workgroups: groups === 0 ? [0, 1, 1] : foldGrid(groups) };
}

export function numel(v: View): number {
  return sizeOf(v.shape);
}
