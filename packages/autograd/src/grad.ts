import { contiguous, fail, fmtShape, forEachTensor, isFloat, onesLike, setRecorder, type Tensor, tidy, zerosLike } from '@foxgate/tensor';
import { alias, isTensor } from './alias.js';
import { noGrad } from './nograd.js';
import { Tape } from './tape.js';
import { mapTree, treeLeaves } from './tree.js';

/** What `f` may return: the scalar loss, or the loss with auxiliary outputs. */
export type LossOutput = Tensor | { loss: Tensor; aux?: unknown };

/** The `aux` type of a loss output (undefined when `f` returns a bare tensor). */
export type AuxOf<O> = O extends { aux?: infer A } ? A : undefined;

export interface ValueAndGrad<P, A> {
  /** The loss `f` returned (a scalar tensor, owned by the caller). */
  value: Tensor;
  /** `f`'s auxiliary output, when it returned `{ loss, aux }` (tensors in it are kept alive). */
  aux: A;
  /** d value / d params, with exactly the structure of `params` (see `Params`). */
  grads: P;
}

export interface GradOptions {
  /**
   * Make every returned gradient contiguous (default true). With false, a gradient may be a
   * broadcast or strided view (e.g. the gradient of `x.sum()` is an expanded scalar).
   */
  contiguous?: boolean;
}

interface Outcome<P> {
  /** Undefined in `grad` mode (the loss is freed with everything else). */
  value: Tensor | undefined;
  aux: unknown;
  hasAux: boolean;
  grads: P;
}

function splitOutput(out: unknown): { loss: Tensor; aux: unknown; hasAux: boolean } {
  if (isTensor(out)) return { loss: out, aux: undefined, hasAux: false };
  if (out !== null && typeof out === 'object' && 'loss' in out && isTensor((out as { loss: unknown }).loss)) {
    return { loss: (out as { loss: Tensor }).loss, aux: (out as { aux?: unknown }).aux, hasAux: true };
  }
  return fail('valueAndGrad', 'f must return a scalar loss Tensor or { loss: Tensor, aux }');
}

/** The forward + backward pass shared by `valueAndGrad` and `grad`. */
function run<P>(call: () => unknown, params: P, rest: unknown[], keepOutputs: boolean, opts: GradOptions): Outcome<P> {
  const leaves = treeLeaves(params);
  for (const t of leaves) t.assertAlive('valueAndGrad');
  return tidy(() => {
    const tape = new Tape();
    for (const t of leaves) tape.watch(t);
    let out: unknown;
    const prev = setRecorder(tape.recorder);
    try {
      out = call();
    } catch (e) {
      tape.teardown();
      throw e;
    } finally {
      setRecorder(prev);
    }
    try {
      const { loss, aux, hasAux } = splitOutput(out);
      loss.assertAlive('valueAndGrad');
      if (loss.size !== 1) fail('valueAndGrad', `f must return a scalar loss (one element), got shape ${fmtShape(loss.shape)}`);
      if (!isFloat(loss.dtype)) fail('valueAndGrad', `the loss must be float32 or float64, got ${loss.dtype}`);
      const keep = new Set<Tensor>();
      if (keepOutputs) forEachTensor({ loss, aux }, (t) => keep.add(t));
      const seed = noGrad(() => onesLike(loss));
      tape.releaseForward(keep);
      noGrad(() => tape.backward(loss, seed));
      const makeContig = opts.contiguous ?? true;
      const done = new Set<Tensor>();
      const grads = noGrad(() =>
        mapTree(params, (t) => {
          if (done.has(t)) return alias(tape.grads.get(t) as Tensor); // a repeated leaf: its own tensor object
          done.add(t);
          let g = tape.grads.get(t) ?? zerosLike(t);
          if (makeContig && !g.isContiguous) {
            const c = contiguous(g);
            g.dispose();
            g = c;
          }
          tape.grads.set(t, g);
          return g;
        }),
      ) as P;
      const inputs = new Set<unknown>(leaves);
      forEachTensor(rest, (t) => inputs.add(t));
      const value = keepOutputs ? (inputs.has(loss) ? alias(loss) : loss) : undefined;
      return { value, aux: keepOutputs ? aux : undefined, hasAux, grads };
    } finally {
      tape.teardown();
    }
  });
}

/**
 * Transforms `f(params, ...rest) → loss` (a scalar tensor, or `{ loss, aux }`) into a function
 * returning the loss, the aux output and the gradient of the loss with respect to every tensor
 * in `params`, as a tree of the same structure. Only `params` is differentiated; tensors in
 * `rest` are constants. `f` must be synchronous. Everything `f` creates is freed when the call
 * returns, except the returned value, aux and gradients (which the caller owns).
 */
export function valueAndGrad<P, R extends unknown[], O extends LossOutput>(
  f: (params: P, ...rest: R) => O,
  opts: GradOptions = {},
): (params: P, ...rest: R) => ValueAndGrad<P, AuxOf<O>> {
  return (params: P, ...rest: R) => {
    const r = run(() => f(params, ...rest), params, rest, true, opts);
    const out = { value: r.value as Tensor, grads: r.grads } as ValueAndGrad<P, AuxOf<O>>;
    if (r.hasAux) out.aux = r.aux as AuxOf<O>;
    return out;
  };
}

/** Like `valueAndGrad` but returns only the gradient tree (the loss and aux are freed). */
export function grad<P, R extends unknown[]>(
  f: (params: P, ...rest: R) => LossOutput,
  opts: GradOptions = {},
): (params: P, ...rest: R) => P {
  return (params: P, ...rest: R) => run(() => f(params, ...rest), params, rest, false, opts).grads;
}
