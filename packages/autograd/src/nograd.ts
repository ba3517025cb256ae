import { setRecorder, type Tensor } from '@foxgate/tensor';
import { alias, checkTensor } from './alias.js';

/**
 * Runs `fn` with recording switched off: nothing it computes is differentiated, and ops free
 * their internal temporaries at once. `fn` must be synchronous; the previous recorder (if any)
 * is restored afterwards, also when `fn` throws.
 */
export function noGrad<T>(fn: () => T): T {
  const prev = setRecorder(null);
  try {
    return fn();
  } finally {
    setRecorder(prev);
  }
}

/**
 * The same values as `x` with the gradient cut: a new tensor over `x`'s storage (no copy) that
 * autograd treats as a constant. The result is a new tensor you own (dispose it, or let the
 * enclosing `tidy` / `valueAndGrad` call do it).
 */
export function stopGradient(x: Tensor): Tensor {
  return alias(checkTensor('stopGradient', x, 'x'));
}
