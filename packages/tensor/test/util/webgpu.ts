// @foxgate/testing depends on this package, so tensor's suites reach it by path (a
// devDependency would make a cycle in the workspace graph); every other package imports it
import { xorshift32 } from '../../../testing/src/random.js';
import * as device from '../../../testing/src/webgpu.js';
import type { Backend, Storage, View } from '../../src/backend.js';
import { CpuBackend } from '../../src/backends/cpu/backend.js';
import type { WebGPUBackend } from '../../src/backends/webgpu/backend.js';
import { arrayFor, type DType, type TypedArray } from '../../src/dtype.js';
import { sizeOf } from '../../src/shape.js';

export const destroyTestWebGPU = device.destroyTestWebGPU;
/** The shared test device, typed with this package's source classes (at run time it is the same class; tsc sees @foxgate/testing's through dist/). */
export const testWebGPU = device.testWebGPU as unknown as () => Promise<WebGPUBackend | null>;

// ---- kernel comparison helpers (WebGPU vs CPU) ----------------------------------------------

/**
 * Helpers for WebGPU-vs-CPU kernel tests: the same base data uploaded to both backends, views
 * with arbitrary shape/strides/offset over it, and readback of a primitive's result.
 */
export const cpu = new CpuBackend();

/** Deterministic pseudo-random values (xorshift), in [-scale, scale] for floats. */
export function values(n: number, dtype: DType, seed = 1, scale = 3): TypedArray {
  const out = arrayFor(dtype, n);
  const next = xorshift32(seed);
  for (let i = 0; i < n; i++) {
    const u = next() / 4294967296;
    if (dtype === 'bool') out[i] = u < 0.5 ? 1 : 0;
    else if (dtype === 'int32') out[i] = Math.floor((u - 0.5) * 2 * scale * 10);
    else if (dtype === 'uint32') out[i] = Math.floor(u * scale * 20);
    else out[i] = (u - 0.5) * 2 * scale;
  }
  return out;
}

export interface ViewSpec {
  data: TypedArray;
  dtype: DType;
  shape: number[];
  strides?: number[];
  offset?: number;
}

function contiguous(shape: readonly number[]): number[] {
  const s: number[] = [];
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/** A view on backend `b` of freshly uploaded `spec.data`. */
export function viewOn(b: Backend, spec: ViewSpec): View {
  return {
    storage: b.upload(spec.data, spec.dtype),
    dtype: spec.dtype,
    shape: spec.shape,
    strides: spec.strides ?? contiguous(spec.shape),
    offset: spec.offset ?? 0,
  };
}

/** A transposed-storage view: the data laid out for `perm` of the shape, viewed back in order. */
export function permutedSpec(shape: number[], perm: number[], dtype: DType, seed = 1): ViewSpec {
  const stored = perm.map((p) => shape[p]);
  const st = contiguous(stored);
  const strides = new Array<number>(shape.length);
  perm.forEach((p, i) => {
    strides[p] = st[i];
  });
  return { data: values(sizeOf(shape), dtype, seed), dtype, shape, strides };
}

/** Runs `fn` on both backends with the same view specs; returns [gpu, cpu] results. */
export async function both(
  gpu: Backend,
  specs: ViewSpec[],
  fn: (b: Backend, views: View[]) => Storage,
  outDtype: DType,
  outSize: number,
): Promise<[TypedArray, TypedArray]> {
  const run = async (b: Backend) => {
    const views = specs.map((s) => viewOn(b, s));
    const out = fn(b, views);
    const data = await b.read(out, outDtype, outSize);
    b.free(out);
    for (const v of views) b.free(v.storage);
    return data;
  };
  return [await run(gpu), await run(cpu)];
}

/** Max |a-e| / (atol + rtol|e|) style check; NaN must match NaN; returns a message or null. */
export function mismatch(actual: ArrayLike<number>, expected: ArrayLike<number>, atol = 1e-6, rtol = 1e-5): string | null {
  if (actual.length !== expected.length) return `length ${actual.length} != ${expected.length}`;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (Number.isNaN(e) || Number.isNaN(a)) {
      if (Number.isNaN(e) && Number.isNaN(a)) continue;
      return `element ${i}: got ${a}, expected ${e}`;
    }
    if (a === e) continue;
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e))) return `element ${i}: got ${a}, expected ${e}`;
  }
  return null;
}
