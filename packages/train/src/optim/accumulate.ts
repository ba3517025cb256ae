import { checkSameTree, noGrad, stopGradient, zipTree } from '@foxgate/autograd';
import { add, cast, dispose, fail, isFloat, isTensor, mul, type Tensor, tidy } from '@foxgate/tensor';

/**
 * Gradient accumulation over micro-batches: sums and scalings of gradient trees. Each returns a
 * new tree of its first argument's structure (new tensors the caller owns; non-float tensors
 * aliased, other leaves copied), with autograd recording off and no temporaries left behind.
 *
 * ```ts
 * let acc: Grads | undefined;
 * for (const mb of microBatches) {
 *   const { value, grads } = step(params, mb);
 *   acc = accumulateGrads(acc, grads); // frees the previous sum and `grads`
 *   value.dispose();
 * }
 * const grads = scaleTree(acc, 1 / microBatches.length);
 * dispose(acc);
 * ```
 */

/** `a + b` leaf by leaf; `b` must have `a`'s structure (the first mismatch names both paths). */
export function addTrees<P>(a: P, b: P): P {
  checkSameTree('addTrees', a, 'a', b, 'b');
  return noGrad(() => tidy(() => zipTree([a, b], [0], ([x, y]) => [isFloat(x.dtype) ? add(x, y) : stopGradient(x)])[0] as P));
}

/** `s · tree` leaf by leaf; `s` is a finite number or a one-element tensor on the leaves' backend. */
export function scaleTree<P>(tree: P, s: number | Tensor): P {
  const op = 'scaleTree';
  if (isTensor(s)) {
    if (s.isDisposed) fail(op, 's has been disposed');
    if (s.size !== 1) fail(op, `s must be a number or a one-element tensor, got shape [${s.shape.join(',')}]`);
  } else if (!(typeof s === 'number' && Number.isFinite(s))) fail(op, `s must be a finite number or a tensor, got ${String(s)}`);
  checkSameTree(op, tree, 'tree', tree, 'tree');
  return noGrad(() =>
    tidy(() => {
      const factor = (t: Tensor): Tensor | number => {
        if (typeof s === 'number') return s;
        if (s.backend !== t.backend) fail(op, `s lives on ${s.backend.name} but the tree on ${t.backend.name}`);
        return s.dtype === t.dtype ? s.reshape([]) : cast(s.reshape([]), t.dtype);
      };
      return zipTree([tree], [0], ([x]) => [isFloat(x.dtype) ? mul(x, factor(x)) : stopGradient(x)])[0] as P;
    }),
  );
}

/**
 * `acc + grads` for an accumulation loop: with no `acc` yet (`undefined` or `null`) returns
 * `grads` itself; otherwise returns `addTrees(acc, grads)` and disposes both `acc` and `grads`.
 */
export function accumulateGrads<P>(acc: P | undefined | null, grads: P): P {
  if (acc === undefined || acc === null) return grads;
  const out = addTrees(acc, grads);
  dispose([acc, grads]);
  return out;
}
