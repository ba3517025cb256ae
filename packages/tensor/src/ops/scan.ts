import { fail } from '../errors.js';
import { record } from '../prims.js';
import { normAxis } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { backendOf, wrap } from './util.js';

/** Inclusive cumulative sum along `axis`; `reverse: true` sums from the end (suffix sums). */
export function cumsum(x: Tensor, axis = -1, opts: { reverse?: boolean } = {}): Tensor {
  const b = backendOf('cumsum', x);
  if (x.rank === 0) fail('cumsum', 'needs a tensor of rank >= 1');
  if (x.dtype === 'bool') fail('cumsum', 'does not take bool tensors; cast first');
  const a = normAxis('cumsum', axis, x.rank);
  const reverse = opts.reverse ?? false;
  const out = wrap(b, b.cumsum(x, a, reverse), x.dtype, x.shape);
  return record('cumsum', [x], out, { axis: a, reverse });
}
