import { fail, isTensor, Tensor } from '@foxgate/tensor';

export { isTensor };

/**
 * A new tensor object over the same storage, shape, strides and offset as `t` (no copy, not
 * recorded). Storages are reference-counted, so disposing the alias or the original never
 * invalidates the other. Autograd keeps aliases of the forward values a backward rule needs,
 * which makes the tape immune to user code disposing intermediates inside `f`.
 */
export function alias(t: Tensor): Tensor {
  return new Tensor(t.backend, t.storage, t.dtype, t.shape, t.strides, t.offset);
}

export function checkTensor(op: string, v: unknown, what: string): Tensor {
  if (!isTensor(v)) fail(op, `${what} must be a Tensor, got ${v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v}`);
  v.assertAlive(op);
  return v;
}
