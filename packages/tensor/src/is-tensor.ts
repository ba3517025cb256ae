import type { Tensor } from './tensor.js';

/**
 * True for foxgate tensors. A brand check, not `instanceof`, so that it also holds for tensors of
 * another copy of this package (a bundle beside an installed one). The one owner of this check:
 * other packages import it from here.
 */
export function isTensor(x: unknown): x is Tensor {
  return typeof x === 'object' && x !== null && (x as { __isFoxgateTensor?: unknown }).__isFoxgateTensor === true;
}
