import { fail, fmtShape, ones, type Tensor } from '@foxgate/tensor';
import { checkDim, checkFloat, checkTensor, fmtTensor } from '../check.js';
import { fusedAddRmsNorm, fusedRmsNorm } from './fused-norm.js';
import type { InitOptions } from './linear.js';

/** Parameters of an RMSNorm layer: a learned per-feature gain (PyTorch name `weight`). */
export interface RMSNormParams {
  /** Gain `[dim]`, initialised to ones. */
  weight: Tensor;
}

/** Default epsilon of RMSNorm layers (the Transformer++/FoX blocks and final norm use 1e-6). */
export const RMS_NORM_EPS = 1e-6;

/** Initialises an RMSNorm layer over `dim` features: `weight = 1`. */
export function initRMSNorm(dim: number, opts: InitOptions = {}): RMSNormParams {
  checkDim('initRMSNorm', 'dim', dim);
  const dtype = opts.dtype ?? 'float32';
  checkFloat('initRMSNorm', 'dtype', dtype);
  return { weight: ones([dim], { dtype, backend: opts.backend }) };
}

function checkNorm(op: string, p: RMSNormParams, x: Tensor, eps: number): void {
  if (p === null || typeof p !== 'object') fail(op, `p must be {weight}, got ${p === null ? 'null' : typeof p}`);
  checkTensor(op, 'p.weight', p.weight);
  checkTensor(op, 'x', x);
  if (p.weight.rank !== 1) fail(op, `p.weight must be [dim], got ${fmtShape(p.weight.shape)}`);
  checkFloat(op, 'x', x.dtype);
  if (x.dtype !== p.weight.dtype) fail(op, `dtypes differ: x ${fmtTensor(x)} and p.weight ${fmtTensor(p.weight)}`);
  if (x.backend !== p.weight.backend)
    fail(op, `x lives on ${x.backend.name} but p.weight on ${p.weight.backend.name}; move one with toBackend()`);
  if (typeof eps !== 'number' || !Number.isFinite(eps) || eps < 0) fail(op, `eps must be a finite number >= 0, got ${String(eps)}`);
}

/**
 * `x / √(mean(x², -1) + eps) · weight` over the last axis of `x` `[..., dim]`, differentiable in
 * `x` and `weight`: one fused kernel (`fusedRmsNorm`) that saves only `x` and the per-row
 * `1/√(mean(x²) + eps)` for the backward (the same values as tensor's composite `rmsNorm`).
 * `eps` defaults to `RMS_NORM_EPS` (1e-6).
 */
export function rmsNormLayer(p: RMSNormParams, x: Tensor, eps: number = RMS_NORM_EPS): Tensor {
  const op = 'rmsNormLayer';
  checkNorm(op, p, x, eps);
  if (x.rank < 1 || x.shape[x.rank - 1] !== p.weight.shape[0]) {
    fail(
      op,
      `x ${fmtShape(x.shape)} has last dim ${x.rank < 1 ? 'none' : x.shape[x.rank - 1]} but p.weight ${fmtShape(p.weight.shape)} expects ${p.weight.shape[0]}`,
    );
  }
  return fusedRmsNorm(x, p.weight, eps);
}

/**
 * The residual add and the RMSNorm after it: `[s, rmsNormLayer(p, s)]` with `s = x + res`, both
 * from one fused kernel (`fusedAddRmsNorm`; its backward gives x and res one gradient, the sum
 * of s's own gradient and the norm's, from one kernel). `x`, `res` `[..., dim]` of one shape.
 */
export function addRmsNormLayer(p: RMSNormParams, x: Tensor, res: Tensor, eps: number = RMS_NORM_EPS): [Tensor, Tensor] {
  const op = 'addRmsNormLayer';
  checkNorm(op, p, x, eps);
  checkTensor(op, 'res', res);
  if (res.dtype !== x.dtype || res.backend !== x.backend || res.rank !== x.rank || res.shape.some((d, i) => d !== x.shape[i])) {
    fail(op, `res ${fmtTensor(res)} on ${res.backend.name} must be like x ${fmtTensor(x)} on ${x.backend.name}`);
  }
  if (x.rank < 1 || x.shape[x.rank - 1] !== p.weight.shape[0]) {
    fail(
      op,
      `x ${fmtShape(x.shape)} has last dim ${x.rank < 1 ? 'none' : x.shape[x.rank - 1]} but p.weight ${fmtShape(p.weight.shape)} expects ${p.weight.shape[0]}`,
    );
  }
  return fusedAddRmsNorm(x, res, p.weight, eps);
}

/**
 * Per-head RMSNorm of `x` `[..., H, D]`: each head's `D` features are normalised on their own,
 * then scaled by `weight`, which is `[H·D]` (a gain per head and feature, the official
 * `qk_norm` / `output_norm` layout) or `[D]` (shared across heads:
 * `qk_norm_share_param_across_head`).
 */
export function headRmsNorm(p: RMSNormParams, x: Tensor, eps: number): Tensor {
  const op = 'headRmsNorm';
  checkNorm(op, p, x, eps);
  if (x.rank < 2) fail(op, `x must be [..., H, D], got ${fmtShape(x.shape)}`);
  const [H, D] = x.shape.slice(-2);
  const n = p.weight.shape[0];
  if (n !== H * D && n !== D)
    fail(op, `p.weight ${fmtShape(p.weight.shape)} must be [${H * D}] (per head) or [${D}] (shared) for x ${fmtShape(x.shape)}`);
  // the fused kernel takes a shared [D] gain and a per-head [H·D] one (head h's rows use gains h·D..)
  return fusedRmsNorm(x, p.weight, eps);
}
