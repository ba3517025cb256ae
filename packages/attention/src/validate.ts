import { fail, fmtShape, isTensor, type Tensor } from '@foxgate/tensor';
import type { FoxDims } from './tiles.js';

/** Largest head dimension the kernels take. */
export const MAX_HEAD_DIM = 256;

function describe(x: unknown): string {
  if (isTensor(x)) return `${x.dtype}${fmtShape(x.shape)}`;
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'an array (wrap it with tensor())';
  return typeof x;
}

/**
 * Checks q `[B,Tq,H,D]`, k, v `[B,Tk,H,D]` and (when given) logF `[B,Tk,H]`: one float dtype,
 * one backend, matching sizes, `Tq ≤ Tk`, `D ≤ 256`. Returns the sizes.
 */
export function checkQKV(op: string, q: unknown, k: unknown, v: unknown, logF?: unknown): FoxDims {
  const args: [string, unknown][] = [
    ['q', q],
    ['k', k],
    ['v', v],
  ];
  if (logF !== undefined) args.push(['logF', logF]);
  for (const [name, x] of args) {
    if (!isTensor(x)) fail(op, `${name} must be a Tensor, got ${describe(x)}`);
    x.assertAlive(op);
  }
  const [tq, tk, tv] = [q, k, v] as Tensor[];
  if (tq.rank !== 4) fail(op, `q must have shape [B,Tq,H,D], got ${fmtShape(tq.shape)}`);
  const [B, Tq, H, D] = tq.shape;
  // k is checked against q, then v against k, so that the message names the tensor that is off
  if (tk.rank !== 4 || tk.shape[0] !== B || tk.shape[2] !== H || tk.shape[3] !== D) {
    fail(op, `k ${fmtShape(tk.shape)} must have shape [B,Tk,H,D] with B, H and D of q ${fmtShape(tq.shape)}`);
  }
  const Tk = tk.shape[1];
  if (tv.rank !== 4 || tv.shape.some((d, i) => d !== tk.shape[i])) {
    fail(op, `v ${fmtShape(tv.shape)} must have the shape of k ${fmtShape(tk.shape)} ([B,Tk,H,D])`);
  }
  if (Tq > Tk)
    fail(
      op,
      `q has more positions than k: Tq=${Tq} > Tk=${Tk} (q ${fmtShape(tq.shape)}, k ${fmtShape(tk.shape)}); queries align to the last Tq keys`,
    );
  if (D > MAX_HEAD_DIM) fail(op, `head dim D=${D} of q ${fmtShape(tq.shape)} exceeds ${MAX_HEAD_DIM}`);
  if (D < 1) fail(op, `head dim D of q ${fmtShape(tq.shape)} must be at least 1`);
  for (const [name, x] of args.slice(1)) {
    const t = x as Tensor;
    if (t.dtype !== tq.dtype)
      fail(op, `${name} has dtype ${t.dtype}${fmtShape(t.shape)} but q has ${tq.dtype}${fmtShape(tq.shape)}; cast to one float dtype`);
    if (t.backend !== tq.backend)
      fail(op, `${name} lives on the ${t.backend.name} backend but q on ${tq.backend.name}; move it with toBackend()`);
  }
  if (tq.dtype !== 'float32' && tq.dtype !== 'float64')
    fail(op, `q, k, v must be float32 or float64, got ${tq.dtype}${fmtShape(tq.shape)}`);
  if (logF !== undefined) {
    const f = logF as Tensor;
    if (f.rank !== 3 || f.shape[0] !== B || f.shape[1] !== Tk || f.shape[2] !== H) {
      fail(op, `logF must have shape [B,Tk,H] = ${fmtShape([B, Tk, H])} for k ${fmtShape(tk.shape)}, got ${fmtShape(f.shape)}`);
    }
  }
  return { B, Tq, Tk, H, D };
}

export function checkScale(op: string, scale: unknown, D: number): number {
  if (scale === undefined) return 1 / Math.sqrt(D);
  if (typeof scale !== 'number' || !Number.isFinite(scale)) fail(op, `opts.scale must be a finite number, got ${String(scale)}`);
  return scale;
}

/**
 * Rejects option keys outside `known` (a misspelt option must not be silently ignored).
 * `where` names the options object in the message (`opts`, `opts.acp`).
 */
export function checkKeys(op: string, opts: object, known: readonly string[], where = 'opts'): void {
  for (const key of Object.keys(opts)) {
    if (!known.includes(key)) fail(op, `unknown option ${where}.${key} (${where} takes ${known.join(', ')})`);
  }
}

/** A boolean option (undefined → false). */
export function checkFlag(op: string, name: string, v: unknown): boolean {
  if (v === undefined) return false;
  if (typeof v !== 'boolean') fail(op, `opts.${name} must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

export function checkImpl(op: string, impl: unknown): 'fused' | 'reference' {
  if (impl === undefined) return 'fused';
  if (impl !== 'fused' && impl !== 'reference') fail(op, `opts.impl must be 'fused' or 'reference', got ${JSON.stringify(impl)}`);
  return impl;
}

/** Checks that `delta` broadcasts to `[B,H]` (NumPy rules, rank ≤ 2) on q's backend. */
export function checkDelta(op: string, delta: unknown, q: Tensor, dims: FoxDims): void {
  if (typeof delta === 'number') {
    if (Number.isNaN(delta)) fail(op, 'opts.acp.delta must not be NaN');
    return;
  }
  if (!isTensor(delta))
    fail(op, `opts.acp.delta must be a Tensor broadcastable to [B,H] = ${fmtShape([dims.B, dims.H])} or a number, got ${describe(delta)}`);
  delta.assertAlive(op);
  const target = [dims.B, dims.H];
  const ok = delta.rank <= 2 && delta.shape.every((d, i) => d === 1 || d === target[target.length - delta.rank + i]);
  if (!ok) fail(op, `opts.acp.delta ${fmtShape(delta.shape)} is not broadcastable to [B,H] = ${fmtShape(target)}`);
  if (delta.backend !== q.backend) fail(op, `opts.acp.delta lives on the ${delta.backend.name} backend but q on ${q.backend.name}`);
  if (delta.dtype !== 'float32' && delta.dtype !== 'float64')
    fail(op, `opts.acp.delta must be a float tensor, got ${delta.dtype}${fmtShape(delta.shape)}`);
}

/**
 * The sliding window (`opts.window`): query i attends to the `window` key positions
 * `(p − window, p]` up to its own position p; undefined is full causal. Returns null when the
 * window covers every causal pair (`window ≥ Tk`), so that such a call runs the causal kernels.
 */
export function checkWindow(op: string, window: unknown, Tk: number): number | null {
  if (window === undefined) return null;
  if (typeof window !== 'number' || !Number.isInteger(window) || window < 1)
    fail(op, `opts.window must be an integer ≥ 1 (key positions each query attends to, itself included), got ${String(window)}`);
  return window >= Tk ? null : window;
}

export function checkLogEps(op: string, logEps: unknown): number {
  if (logEps === undefined) return -10;
  if (typeof logEps !== 'number' || !Number.isFinite(logEps) || logEps > 0) {
    fail(op, `opts.acp.logEps must be a finite number ≤ 0 (log of the pruned-mass bound ε ≤ 1), got ${String(logEps)}`);
  }
  return logEps;
}
