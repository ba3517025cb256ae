import { isFloat } from '../dtype.js';
import { fail, fmtShape } from '../errors.js';
import { checkPrecision, type MatmulOptions } from '../precision.js';
import { record } from '../prims.js';
import { broadcastShapes } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { backendOf, broadcastView, release, wrap } from './util.js';
import { reshape } from './views.js';

/**
 * Matrix product with NumPy semantics: `[..., M, K] @ [..., K, N] → [..., M, N]`, batch dims
 * broadcast; a 1-D operand is treated as a row (left) or column (right) vector and its axis
 * removed from the result. Transposed operands are free: pass `x.transpose()` (a view).
 * `opts.precision` overrides the backend's matmul precision for this product ('high': f16
 * operands, f32 accumulation, where the WebGPU adapter has f16 subgroup matrices; see
 * `MatmulPrecision`). Gradients recorded by autograd use the backend's precision.
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const backend = backendOf('matmul', a, b);
  checkPrecision('matmul', 'opts.precision', opts.precision);
  if (a.dtype !== b.dtype) fail('matmul', `dtype mismatch: ${a.dtype}${fmtShape(a.shape)} and ${b.dtype}${fmtShape(b.shape)}`);
  if (!isFloat(a.dtype)) fail('matmul', `needs float tensors, got ${a.dtype}`);
  if (a.rank === 0 || b.rank === 0) fail('matmul', `needs rank >= 1 operands, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
  if (a.rank === 1 || b.rank === 1) {
    const a2 = a.rank === 1 ? reshape(a, [1, a.shape[0]]) : a;
    const b2 = b.rank === 1 ? reshape(b, [b.shape[0], 1]) : b;
    const r = matmul(a2, b2, opts);
    const shape = [...r.shape];
    if (b.rank === 1) shape.pop();
    if (a.rank === 1) shape.splice(shape.length - (b.rank === 1 ? 1 : 2), 1);
    const out = reshape(r, shape);
    release(a2 === a ? null : a2, b2 === b ? null : b2, r);
    return out;
  }
  const [M, K] = a.shape.slice(-2);
  const [K2, N] = b.shape.slice(-2);
  if (K !== K2) fail('matmul', `inner dims differ: ${fmtShape(a.shape)} @ ${fmtShape(b.shape)} (${K} vs ${K2})`);
  const batch = broadcastShapes('matmul', a.shape.slice(0, -2), b.shape.slice(0, -2));
  const av = broadcastView(a, [...batch, M, K]);
  const bv = broadcastView(b, [...batch, K, N]);
  const out = wrap(backend, backend.matmul(av, bv, opts.precision ? opts : undefined), a.dtype, [...batch, M, N]);
  return record('matmul', [a, b], out, {});
}
