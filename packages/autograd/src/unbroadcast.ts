import { fail, fmtShape, reshape, type Shape, sum, type Tensor } from '@foxgate/tensor';

function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Undoes NumPy broadcasting for a gradient: sums `g` over the leading axes `shape` lacks and
 * over the axes where `shape` has 1 and `g` does not, giving a tensor of `shape`. Returns `g`
 * itself when the shapes already agree.
 */
export function unbroadcast(g: Tensor, shape: Shape): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.rank - shape.length;
  if (lead < 0) fail('unbroadcast', `gradient ${fmtShape(g.shape)} has fewer dims than the target ${fmtShape(shape)}`);
  const axes: number[] = [];
  for (let i = 0; i < lead; i++) axes.push(i);
  for (let i = 0; i < shape.length; i++) {
    const d = g.shape[lead + i];
    if (shape[i] === d) continue;
    if (shape[i] !== 1) fail('unbroadcast', `gradient ${fmtShape(g.shape)} does not broadcast from ${fmtShape(shape)}`);
    axes.push(lead + i);
  }
  if (axes.length === 0) return reshape(g, shape);
  const s = sum(g, axes, true);
  const out = reshape(s, shape);
  s.dispose(); // `out` is a view that keeps the storage alive
  return out;
}
