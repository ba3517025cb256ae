import { fail, fmtShape, ones, rmsNorm, type Tensor } from '@foxgate/tensor';
import { checkDim, checkFloat, checkTensor, fmtTensor } from '../check.js';
import type { InitOptions } from './linear.js';

/** Parameters of an RMSNorm layer: a learned per-feature gain. */
export interface RMSNormParams {
  /** Gain `[dim]`, initialised to ones. */
  g: Tensor;
}

/** Default epsilon of RMSNorm layers (the Transformer++/FoX blocks and final norm use 1e-6). */
export const RMS_NORM_EPS = 1e-6;

/** Initialises an RMSNorm layer over the last `dim` features: `g = 1`. */
export function initRMSNorm(dim: number, opts: InitOptions = {}): RMSNormParams {
  checkDim('initRMSNorm', 'dim', dim);
  const dtype = opts.dtype ?? 'float32';
  checkFloat('initRMSNorm', 'dtype', dtype);
  return { g: ones([dim], { dtype, backend: opts.backend }) };
}

/**
 * `x / √(mean(x², -1) + eps) · g` over the last axis of `x` `[..., dim]` (tensor's `rmsNorm`
 * composite, differentiable in both `x` and `g`). `eps` defaults to `RMS_NORM_EPS` (1e-6).
 */
export function rmsNormLayer(p: RMSNormParams, x: Tensor, eps: number = RMS_NORM_EPS): Tensor {
  const op = 'rmsNormLayer';
  if (p === null || typeof p !== 'object') fail(op, `p must be {g}, got ${p === null ? 'null' : typeof p}`);
  checkTensor(op, 'p.g', p.g);
  checkTensor(op, 'x', x);
  if (p.g.rank !== 1) fail(op, `p.g must be [dim], got ${fmtShape(p.g.shape)}`);
  if (x.rank < 1 || x.shape[x.rank - 1] !== p.g.shape[0]) {
    fail(
      op,
      `x ${fmtShape(x.shape)} has last dim ${x.rank < 1 ? 'none' : x.shape[x.rank - 1]} but p.g ${fmtShape(p.g.shape)} expects ${p.g.shape[0]}`,
    );
  }
  checkFloat(op, 'x', x.dtype);
  if (x.dtype !== p.g.dtype) fail(op, `dtypes differ: x ${fmtTensor(x)} and p.g ${fmtTensor(p.g)}`);
  if (x.backend !== p.g.backend) fail(op, `x lives on ${x.backend.name} but p.g on ${p.g.backend.name}; move one with toBackend()`);
  if (typeof eps !== 'number' || !Number.isFinite(eps) || eps < 0) fail(op, `eps must be a finite number >= 0, got ${String(eps)}`);
  return rmsNorm(x, p.g, eps);
}
