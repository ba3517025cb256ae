import { fmtPath, noGrad, stopGradient, zipTree } from '@foxgate/autograd';
import { add, cast, div, fail, isFloat, isTensor, minimum, mul, sqrt, sum, type Tensor, tidy } from '@foxgate/tensor';
import { fitsNormKernel, globalNormWebGPU } from './norm-kernel.js';

/**
 * Global-norm gradient clipping over a gradient tree, computed on the gradients' backend: the
 * norm and the clip factor are tensors, never read back.
 */

/** The float tensor leaves of `tree` with their paths; all must live on one backend. */
function floatLeaves(op: string, tree: unknown, name: string): Tensor[] {
  const out: Tensor[] = [];
  let firstPath = '';
  zipTree([tree], [], ([t], path) => {
    if (t.isDisposed) fail(op, `${fmtPath(name, path)} has been disposed`);
    if (!isFloat(t.dtype)) return [];
    if (out.length === 0) firstPath = fmtPath(name, path);
    else if (t.backend !== out[0].backend)
      fail(op, `${fmtPath(name, path)} lives on ${t.backend.name} but ${firstPath} on ${out[0].backend.name}`);
    out.push(t);
    return [];
  });
  if (out.length === 0) fail(op, `${name} holds no float tensor`);
  return out;
}

function globalNormOf(leaves: readonly Tensor[]): Tensor {
  if (fitsNormKernel(leaves)) return globalNormWebGPU(leaves);
  const dtype = leaves[0].dtype;
  let total: Tensor | null = null;
  for (const g of leaves) {
    let s = sum(mul(g, g));
    if (s.dtype !== dtype) s = cast(s, dtype);
    total = total === null ? s : add(total, s);
  }
  return sqrt(total as Tensor);
}

/**
 * `‖grads‖₂` over every float leaf of the tree (`√Σ g²` over all their elements), as a scalar
 * tensor (shape `[]`) of the first float leaf's dtype on the gradients' backend; other leaves
 * are cast to that dtype for the sum. Non-float leaves are skipped. A new tensor the caller
 * owns; nothing is read back. On WebGPU (float32 leaves) it takes one dispatch per leaf plus one,
 * and no temporaries of a leaf's size; elsewhere it is composed (`Σ sum(g·g)`, then `sqrt`).
 */
export function globalNorm(grads: unknown): Tensor {
  const leaves = floatLeaves('globalNorm', grads, 'grads');
  return noGrad(() => tidy(() => globalNormOf(leaves)));
}

/**
 * The clip factor `min(1, maxNorm / (norm + 1e-6))` of a norm tensor (from {@link globalNorm}),
 * computed on its backend: a new scalar tensor of `norm`'s dtype. Hand it to AdamW's update as
 * `{ gradScale }` to clip inside the fused step, or multiply the gradients by it. A NaN norm
 * gives NaN. `maxNorm` defaults to 1.
 */
export function clipFactor(norm: Tensor, maxNorm = 1): Tensor {
  const op = 'clipFactor';
  checkMaxNorm(op, maxNorm);
  if (!isTensor(norm) || norm.size !== 1)
    fail(op, `norm must be a one-element tensor, got ${isTensor(norm) ? `shape [${norm.shape}]` : String(norm)}`);
  if (norm.isDisposed) fail(op, 'norm has been disposed');
  if (!isFloat(norm.dtype)) fail(op, `norm must be a float tensor, got ${norm.dtype}`);
  return noGrad(() => tidy(() => factorOf(norm.reshape([]), maxNorm)));
}

function checkMaxNorm(op: string, maxNorm: number): void {
  if (!(typeof maxNorm === 'number' && Number.isFinite(maxNorm) && maxNorm > 0)) {
    fail(op, `maxNorm must be a finite number > 0, got ${String(maxNorm)}`);
  }
}

function factorOf(norm: Tensor, maxNorm: number): Tensor {
  return minimum(div(maxNorm, add(norm, 1e-6)), 1);
}

/**
 * Global-norm clipping (PyTorch's `clip_grad_norm_`): with `norm = ‖grads‖₂` (see
 * {@link globalNorm}), every float leaf is multiplied by `min(1, maxNorm / (norm + 1e-6))`, a
 * scalar computed on the device. Returns new gradients (of `grads`' structure; non-float
 * tensors are aliased, other leaves copied) and the norm before clipping; the caller owns both
 * and `grads` is left alone. A NaN norm makes the clipped gradients NaN (check the norm when you
 * log it). `maxNorm` defaults to 1. In a training step, `globalNorm` + `clipFactor` + AdamW's
 * `gradScale` do the same without the per-leaf multiplications.
 */
export function clipGradNorm<P>(grads: P, maxNorm = 1): { grads: P; norm: Tensor } {
  const op = 'clipGradNorm';
  checkMaxNorm(op, maxNorm);
  const leaves = floatLeaves(op, grads, 'grads');
  return noGrad(() =>
    tidy(() => {
      const norm = globalNormOf(leaves);
      const scale = factorOf(norm, maxNorm);
      const scales = new Map<string, Tensor>([[scale.dtype, scale]]);
      const scaleOf = (dtype: string): Tensor => {
        let s = scales.get(dtype);
        if (!s) scales.set(dtype, (s = cast(scale, dtype as Tensor['dtype'])));
        return s;
      };
      const [clipped] = zipTree([grads], [0], ([g]) => [isFloat(g.dtype) ? mul(g, scaleOf(g.dtype)) : stopGradient(g)]);
      return { grads: clipped as P, norm };
    }),
  );
}
