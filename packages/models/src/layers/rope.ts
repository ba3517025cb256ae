import { fail, fmtShape, type Tensor, tensor } from '@foxgate/tensor';
import { checkTensor } from '../check.js';
import { headFused } from './head-fused.js';

/** RoPE options: `base` (default 500000, the FoX models'), the position of the first row (`offset`, for decoding). */
export interface RopeOptions {
  base?: number;
  offset?: number;
  /**
   * Precomputed tables from `ropeTableTensors` (x's T, D, dtype and backend; they override `base`
   * and `offset`): a model builds them once per forward and shares them by every layer's q and k.
   */
  tables?: RopeTables;
}

/** The cos/sin tables as tensors `[T, 1, D]`. */
export interface RopeTables {
  cos: Tensor;
  sin: Tensor;
}

export const ROPE_BASE = 500000;

/**
 * The cos/sin tables `[T, D]` of rotate-half RoPE: angle(t, i) = (offset + t)·base^(−2i/D) for
 * `i < D/2`, repeated for the second half. Computed in float64 on the host.
 */
export function ropeTables(T: number, D: number, opts: RopeOptions = {}): { cos: Float64Array; sin: Float64Array } {
  const base = opts.base ?? ROPE_BASE;
  const offset = opts.offset ?? 0;
  const half = D / 2;
  const cos = new Float64Array(T * D);
  const sin = new Float64Array(T * D);
  const inv = Float64Array.from({ length: half }, (_, i) => base ** (-(2 * i) / D));
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < half; i++) {
      const a = (offset + t) * inv[i];
      cos[t * D + i] = cos[t * D + half + i] = Math.cos(a);
      sin[t * D + i] = sin[t * D + half + i] = Math.sin(a);
    }
  }
  return { cos, sin };
}

/**
 * The host tables of the last few (T, D, base, offset, dtype), ready to upload: a training loop
 * uploads the same tables every forward, and computing them (2·T·D/2 cosines and sines) took
 * 65–74 ms of host time per step at T = 16384 (2-core development machine), while the GPU waited
 * for the first layer.
 */
const hostTables = new Map<string, { cos: Float32Array | Float64Array; sin: Float32Array | Float64Array }>();
const HOST_TABLES_KEPT = 4;

function hostTablesFor(T: number, D: number, base: number, offset: number, dtype: Tensor['dtype']) {
  const key = `${T}:${D}:${base}:${offset}:${dtype}`;
  let e = hostTables.get(key);
  if (!e) {
    const { cos, sin } = ropeTables(T, D, { base, offset });
    e = dtype === 'float64' ? { cos, sin } : { cos: Float32Array.from(cos), sin: Float32Array.from(sin) };
    if (hostTables.size >= HOST_TABLES_KEPT) hostTables.delete(hostTables.keys().next().value as string);
  } else hostTables.delete(key); // re-inserted last: the most recent stays longest
  hostTables.set(key, e);
  return e;
}

/** `ropeTables` uploaded as tensors `[T, 1, D]` of `dtype` on `backend` (never differentiated). */
export function ropeTableTensors(
  T: number,
  D: number,
  opts: { base?: number; offset?: number; dtype: Tensor['dtype']; backend: Tensor['backend'] },
): RopeTables {
  const { cos, sin } = hostTablesFor(T, D, opts.base ?? ROPE_BASE, opts.offset ?? 0, opts.dtype);
  const create = { dtype: opts.dtype, backend: opts.backend };
  return { cos: tensor(cos, [T, 1, D], create), sin: tensor(sin, [T, 1, D], create) };
}

/**
 * The tables `rope` uses for heads `[B,T,H,D]` of `x`'s dtype and backend: `opts.tables` after
 * checking them, else fresh ones from `base` and `offset` (`owned`: the caller frees them).
 */
export function ropeTablesFor(
  op: string,
  T: number,
  D: number,
  x: Pick<Tensor, 'dtype' | 'backend'>,
  opts: RopeOptions = {},
): { tables: RopeTables; owned: boolean } {
  if (D % 2 !== 0) fail(op, `the head dim must be even, got ${D}`);
  const base = opts.base ?? ROPE_BASE;
  const offset = opts.offset ?? 0;
  if (!(base > 0) || !Number.isFinite(base)) fail(op, `base must be a finite number > 0, got ${String(base)}`);
  if (!Number.isInteger(offset) || offset < 0) fail(op, `offset must be an integer >= 0, got ${String(offset)}`);
  const given = opts.tables;
  if (given) {
    for (const [name, t] of [
      ['cos', given.cos],
      ['sin', given.sin],
    ] as const) {
      if (t.rank !== 3 || t.shape[0] !== T || t.shape[1] !== 1 || t.shape[2] !== D || t.dtype !== x.dtype || t.backend !== x.backend)
        fail(op, `tables.${name} must be ${x.dtype}[${T},1,${D}] on x's backend, got ${t.dtype}${fmtShape(t.shape)}`);
    }
    return { tables: given, owned: false };
  }
  return { tables: ropeTableTensors(T, D, { base, offset, dtype: x.dtype, backend: x.backend }), owned: true };
}

/**
 * Rotate-half RoPE on `x` `[B, T, H, D]` (D even): `x·cos + rotate_half(x)·sin` with
 * `rotate_half([x₁, x₂]) = [−x₂, x₁]` over the two halves of each head. One fused op
 * (`headFused`): a single kernel each way, and the backward (the rotation by −θ) keeps nothing
 * alive but the tables.
 */
export function rope(x: Tensor, opts: RopeOptions = {}): Tensor {
  const op = 'rope';
  checkTensor(op, 'x', x);
  if (x.rank !== 4) fail(op, `x must be [B,T,H,D], got ${fmtShape(x.shape)}`);
  const { tables, owned } = ropeTablesFor(op, x.shape[1], x.shape[3], x, opts);
  const out = headFused(x, { rope: tables });
  if (owned) {
    tables.cos.dispose();
    tables.sin.dispose();
  }
  return out;
}
