import { fail, fmtShape } from '../errors.js';
import { record } from '../prims.js';
import { checkShape, isContiguous, normAxes, normAxis, sizeOf } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { backendOf, release, viewOf, wrap } from './util.js';

/** A contiguous copy of `x`, or a new view of the same storage when it already is contiguous. */
export function contiguous(x: Tensor): Tensor {
  const b = backendOf('contiguous', x);
  const out = x.isContiguous ? viewOf(x, x.shape, x.strides, x.offset) : wrap(b, b.copy(x), x.dtype, x.shape);
  return record('contiguous', [x], out, {});
}

/**
 * A tensor with the same elements in row-major order and a new shape; one dim may be -1.
 * A view when `x` is contiguous, otherwise a contiguous copy first.
 */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  backendOf('reshape', x);
  const target = [...shape];
  const infer = target.indexOf(-1);
  if (infer >= 0) {
    if (target.indexOf(-1, infer + 1) >= 0) fail('reshape', `only one dim may be -1, got ${fmtShape(target)}`);
    const rest = sizeOf(target.filter((_, i) => i !== infer));
    if (rest === 0 || x.size % rest !== 0) fail('reshape', `cannot reshape ${fmtShape(x.shape)} into ${fmtShape(target)}`);
    target[infer] = x.size / rest;
  }
  checkShape('reshape', target);
  if (sizeOf(target) !== x.size) {
    fail('reshape', `cannot reshape ${fmtShape(x.shape)} (${x.size} elements) into ${fmtShape(target)} (${sizeOf(target)} elements)`);
  }
  if (isContiguous(x.shape, x.strides)) {
    return record('reshape', [x], viewOf(x, target, undefined, x.offset), { shape: target });
  }
  const c = contiguous(x);
  const out = viewOf(c, target, undefined, c.offset);
  record('reshape', [c], out, { shape: target });
  release(c);
  return out;
}

/** Reorders axes: `out.shape[i] = x.shape[perm[i]]`. A view. */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  backendOf('permute', x);
  if (perm.length !== x.rank) fail('permute', `perm ${fmtShape(perm)} has ${perm.length} axes; tensor ${fmtShape(x.shape)} has ${x.rank}`);
  const p = perm.map((a) => normAxis('permute', a, x.rank));
  if (new Set(p).size !== p.length) fail('permute', `perm ${fmtShape(perm)} repeats an axis`);
  const out = viewOf(
    x,
    p.map((a) => x.shape[a]),
    p.map((a) => x.strides[a]),
    x.offset,
  );
  return record('permute', [x], out, { perm: p });
}

/** Swaps two axes (default: the last two). A view. */
export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  const r = x.rank;
  const perm = Array.from({ length: r }, (_, i) => i);
  const i = normAxis('transpose', a, r);
  const j = normAxis('transpose', b, r);
  perm[i] = j;
  perm[j] = i;
  return permute(x, perm);
}

/** Broadcasts `x` to `shape` (NumPy rules; new leading axes allowed). A view with stride 0. */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  backendOf('expand', x);
  const target = checkShape('expand', shape);
  const n = target.length;
  const k = x.rank;
  if (n < k) fail('expand', `cannot expand ${fmtShape(x.shape)} to fewer dims ${fmtShape(target)}`);
  const strides = new Array<number>(n).fill(0);
  for (let i = 0; i < k; i++) {
    const d = x.shape[i];
    const t = target[n - k + i];
    if (d === t) strides[n - k + i] = d === 1 ? 0 : x.strides[i];
    else if (d !== 1) fail('expand', `cannot expand ${fmtShape(x.shape)} to ${fmtShape(target)} (dim ${i}: ${d} vs ${t})`);
  }
  const out = viewOf(x, target, strides, x.offset);
  return record('expand', [x], out, { shape: target });
}

export const broadcastTo = expand;

/** Removes size-1 axes (all of them, or the given ones, which must be size 1). A view. */
export function squeeze(x: Tensor, axes?: number | number[]): Tensor {
  const list = axes === undefined ? x.shape.flatMap((d, i) => (d === 1 ? [i] : [])) : normAxes('squeeze', axes, x.rank);
  for (const a of list) if (x.shape[a] !== 1) fail('squeeze', `axis ${a} of ${fmtShape(x.shape)} has size ${x.shape[a]}, not 1`);
  return reshape(
    x,
    x.shape.filter((_, i) => !list.includes(i)),
  );
}

/** Inserts a size-1 axis at `axis` (negative counts from the end of the result). A view. */
export function unsqueeze(x: Tensor, axis: number): Tensor {
  const a = normAxis('unsqueeze', axis, x.rank + 1);
  const shape = [...x.shape];
  shape.splice(a, 0, 1);
  const strides = [...x.strides];
  strides.splice(a, 0, a < x.rank ? x.strides[a] * x.shape[a] : 1);
  backendOf('unsqueeze', x);
  const out = viewOf(x, shape, strides, x.offset);
  return record('reshape', [x], out, { shape });
}

/** One axis of a slice: an index (drops the axis), `null` (all), or `[start, stop, step]`. */
export type SliceSpec = number | null | readonly (number | null | undefined)[];

/**
 * Slices with NumPy semantics per axis (missing trailing axes are taken whole). Negative
 * start/stop count from the end; steps must be positive. A view.
 */
export function slice(x: Tensor, specs: readonly SliceSpec[]): Tensor {
  backendOf('slice', x);
  if (specs.length > x.rank) fail('slice', `${specs.length} slice specs for a tensor of rank ${x.rank} ${fmtShape(x.shape)}`);
  const starts: number[] = [];
  const stops: number[] = [];
  const steps: number[] = [];
  const drop: number[] = [];
  for (let i = 0; i < x.rank; i++) {
    const n = x.shape[i];
    const s = specs[i];
    if (typeof s === 'number') {
      const idx = s < 0 ? s + n : s;
      if (!Number.isInteger(s) || idx < 0 || idx >= n) fail('slice', `index ${s} is out of range for axis ${i} of size ${n}`);
      starts.push(idx);
      stops.push(idx + 1);
      steps.push(1);
      drop.push(i);
      continue;
    }
    const [a, b, st] = s ?? [];
    const step = st ?? 1;
    if (!Number.isInteger(step) || step <= 0) fail('slice', `step must be a positive integer on axis ${i}, got ${step}`);
    const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + n : v, 0), n);
    const start = a === undefined || a === null ? 0 : clamp(a);
    const stop = Math.max(start, b === undefined || b === null ? n : clamp(b));
    starts.push(start);
    stops.push(stop);
    steps.push(step);
  }
  const shape = starts.map((s, i) => Math.ceil((stops[i] - s) / steps[i]));
  const strides = x.strides.map((s, i) => s * steps[i]);
  const offset = x.offset + starts.reduce((acc, s, i) => acc + s * x.strides[i], 0);
  const out = viewOf(x, shape, strides, offset);
  record('slice', [x], out, { starts, stops, steps });
  if (drop.length === 0) return out;
  const squeezed = reshapeView(
    out,
    shape.filter((_, i) => !drop.includes(i)),
    strides.filter((_, i) => !drop.includes(i)),
  );
  release(out);
  return squeezed;
}

/** Drops size-1 axes of a view without a copy (recorded as reshape). */
function reshapeView(x: Tensor, shape: number[], strides: number[]): Tensor {
  const out = viewOf(x, shape, strides, x.offset);
  return record('reshape', [x], out, { shape });
}

/** `length` elements of `axis` from `start`. A view. */
export function narrow(x: Tensor, axis: number, start: number, length: number): Tensor {
  const a = normAxis('narrow', axis, x.rank);
  const n = x.shape[a];
  const s = start < 0 ? start + n : start;
  if (s < 0 || length < 0 || s + length > n) fail('narrow', `range [${start}, ${start}+${length}) is outside axis ${a} of size ${n}`);
  const specs: [number, number, number][] = x.shape.map((d) => [0, d, 1]);
  specs[a] = [s, s + length, 1];
  return slice(x, specs);
}
