import { checkSameTree, dottedPath, fmtPath, mapTree, noGrad, type PathSegment, stopGradient, zipTree } from '@foxgate/autograd';
import { dispose, fail, isFloat, isTensor, type Tensor, tidy, zerosLike } from '@foxgate/tensor';
import { type AdamWImpl, type AdamWStepCoefficients, adamwStep } from './optim/adamw-step.js';
import { defaultDecayMask } from './optim/decay.js';

/** Options of {@link adamw}. */
export interface AdamWOptions {
  /**
   * Learning rate: a number > 0, or a schedule `(step) => lr` called once per update with the
   * 1-based step being taken (1 for the first update); it must return a finite number ≥ 0.
   */
  lr: number | ((step: number) => number);
  /** Decay rate of the first-moment average, in [0, 1). Default 0.9. */
  beta1?: number;
  /** Decay rate of the second-moment average, in [0, 1). Default 0.95 (LM training). */
  beta2?: number;
  /** Added to √v̂ in the denominator, > 0. Default 1e-8. */
  eps?: number;
  /** Decoupled weight decay (`p ← p·(1 − lr·weightDecay)`), ≥ 0. Default 0.1. */
  weightDecay?: number;
  /**
   * Which float leaves get weight decay: called with the leaf's dotted path
   * (`model.layers.0.attn.fgate_proj.bias`; array indices and Map keys are path parts) and the
   * parameter tensor, it returns `true` to decay. Default {@link defaultDecayMask}: rank ≥ 2 only
   * (no decay on norm weights and biases).
   */
  decay?: (path: string, t: Tensor) => boolean;
  /**
   * `'fused'` (default): one pass per leaf — a typed-array loop on the CPU, one WGSL dispatch on
   * WebGPU (float32); `'composed'`: elementwise tensor ops (the reference the tests hold the fused
   * step to).
   */
  impl?: AdamWImpl;
}

/**
 * AdamW state: the number of updates taken so far and the first/second moment averages, trees
 * of the parameters' structure (each tensor of the parameter's shape, dtype and backend).
 */
export interface AdamWState<P> {
  step: number;
  m: P;
  v: P;
}

/** Per-update options of {@link AdamW.update}. */
export interface AdamWUpdateOptions {
  /**
   * A one-element float tensor on the parameters' backend that multiplies every gradient before
   * the step, inside the fused loop or kernel: the clip factor of `clipFactor(globalNorm(grads))`
   * (global-norm clipping without another pass over the gradients), or 1/n for a sum of n
   * micro-batch gradients. It is not read back on WebGPU.
   */
  gradScale?: Tensor;
}

/** An AdamW optimizer over parameter trees of type `P` (see {@link adamw}). */
export interface AdamW<P> {
  /** The resolved options (defaults filled in). */
  readonly options: Readonly<Required<AdamWOptions>>;
  /** Fresh state for `params`: step 0 and zero moments (new tensors the caller owns). */
  init(params: P): AdamWState<P>;
  /**
   * One AdamW step. Returns new parameters and a new state (new tensors the caller owns); the
   * inputs `params`, `grads` and `state` are neither modified nor disposed.
   */
  update(params: P, grads: P, state: AdamWState<P>, opts?: AdamWUpdateOptions): { params: P; state: AdamWState<P> };
  /**
   * `update`, then disposes the old `params` and the old `state.m` / `state.v` (not `grads`):
   * for loops of the form `({ params, state } = opt.updateAndDispose(params, grads, state))`.
   */
  updateAndDispose(params: P, grads: P, state: AdamWState<P>, opts?: AdamWUpdateOptions): { params: P; state: AdamWState<P> };
}

const OPTION_NAMES = ['lr', 'beta1', 'beta2', 'eps', 'weightDecay', 'decay', 'impl'] as const;

function fmtValue(v: unknown): string {
  if (typeof v === 'number' || v === undefined) return String(v);
  if (typeof v === 'function') return 'a function';
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

function resolveOptions(opts: AdamWOptions): Required<AdamWOptions> {
  if (opts === null || typeof opts !== 'object') fail('adamw', `options must be an object, got ${fmtValue(opts)}`);
  for (const key of Object.keys(opts)) {
    if (!(OPTION_NAMES as readonly string[]).includes(key)) {
      fail('adamw', `unknown option ${JSON.stringify(key)} (the options are ${OPTION_NAMES.join(', ')})`);
    }
  }
  const { lr, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weightDecay = 0.1, decay = defaultDecayMask, impl = 'fused' } = opts;
  if (typeof lr !== 'function' && !(typeof lr === 'number' && Number.isFinite(lr) && lr > 0)) {
    fail('adamw', `lr must be a finite number > 0 or a schedule function, got ${fmtValue(lr)}`);
  }
  for (const [name, value] of [
    ['beta1', beta1],
    ['beta2', beta2],
  ] as const) {
    if (!(typeof value === 'number' && value >= 0 && value < 1)) fail('adamw', `${name} must be in [0, 1), got ${fmtValue(value)}`);
  }
  if (!(typeof eps === 'number' && Number.isFinite(eps) && eps > 0)) fail('adamw', `eps must be a finite number > 0, got ${fmtValue(eps)}`);
  if (!(typeof weightDecay === 'number' && Number.isFinite(weightDecay) && weightDecay >= 0)) {
    fail('adamw', `weightDecay must be a finite number ≥ 0, got ${fmtValue(weightDecay)}`);
  }
  if (typeof decay !== 'function') fail('adamw', `decay must be a function (path, tensor) => boolean, got ${fmtValue(decay)}`);
  if (impl !== 'fused' && impl !== 'composed') fail('adamw', `impl must be 'fused' or 'composed', got ${fmtValue(impl)}`);
  return { lr, beta1, beta2, eps, weightDecay, decay, impl };
}

function checkGradScale(opts: AdamWUpdateOptions): Tensor | undefined {
  if (opts === null || typeof opts !== 'object') fail('adamw', `update options must be an object, got ${fmtValue(opts)}`);
  for (const key of Object.keys(opts)) {
    if (key !== 'gradScale') fail('adamw', `unknown update option ${JSON.stringify(key)} (the option is gradScale)`);
  }
  const s = opts.gradScale;
  if (s === undefined) return undefined;
  if (!isTensor(s)) fail('adamw', `gradScale must be a one-element float tensor, got ${fmtValue(s)}`);
  if (s.isDisposed) fail('adamw', 'gradScale has been disposed');
  if (s.size !== 1 || !isFloat(s.dtype))
    fail('adamw', `gradScale must be a one-element float tensor, got ${s.dtype}[${s.shape.join(',')}]`);
  return s;
}

/**
 * The AdamW optimizer (Loshchilov & Hutter; PyTorch `torch.optim.AdamW` semantics) over a
 * parameter tree `P`: tensors nested in arrays, plain records and Maps, as taken and returned
 * by `valueAndGrad` from `@foxgate/autograd`. Per float tensor leaf, with `t = state.step + 1`
 * and `wd = weightDecay` where `decay(path, p)` holds, else 0:
 *
 * ```
 * m ← β1·m + (1 − β1)·g
 * v ← β2·v + (1 − β2)·g²
 * p ← p·(1 − lr·wd) − lr · (m / (1 − β1ᵗ)) / (√(v / (1 − β2ᵗ)) + eps)
 * ```
 *
 * Defaults are those of LM training: β1 0.9, β2 0.95, weight decay 0.1 on rank ≥ 2 leaves only.
 * The update of one leaf is one fused pass on the parameters' backend (a CPU loop, or one WGSL
 * dispatch on WebGPU; `impl: 'composed'` uses elementwise ops), with no readbacks (only the
 * step counter and the scalar coefficients live on the host), autograd recording off and every
 * temporary freed: after `update` only the returned tensors are new. Non-float tensor leaves (int32, uint32,
 * bool) are not optimised: the new tree holds an alias of the same data (a new tensor object
 * over the same storage, no copy), and so does the new state. Non-tensor leaves (numbers,
 * strings, null, ...) are copied as they are. A tensor that appears at several positions is
 * updated at each position separately (the results are separate tensors).
 *
 * Errors (one line, `FoxgateError`): bad options name the option and the value; `grads` (and
 * `state.m` / `state.v`) of another structure than `params` name the first mismatching path,
 * e.g. `adamw: grads.layers[1].w has shape [3,4] but params.layers[1].w has [4,3]`.
 */
export function adamw<P>(opts: AdamWOptions): AdamW<P> {
  const options = resolveOptions(opts);
  const { lr, beta1, beta2, eps, weightDecay, decay, impl } = options;

  const lrAt = (t: number): number => {
    if (typeof lr === 'number') return lr;
    const value = lr(t);
    if (!(typeof value === 'number' && Number.isFinite(value) && value >= 0)) {
      fail('adamw', `lr(${t}) returned ${fmtValue(value)}; a schedule must return a finite number ≥ 0`);
    }
    return value;
  };

  const init = (params: P): AdamWState<P> => {
    checkSameTree('adamw', params, 'params', params, 'params');
    return tidy(() => ({ step: 0, m: mapTree(params, zerosLike) as P, v: mapTree(params, zerosLike) as P }));
  };

  const update = (params: P, grads: P, state: AdamWState<P>, opts: AdamWUpdateOptions = {}): { params: P; state: AdamWState<P> } => {
    if (state === null || typeof state !== 'object') fail('adamw', `state must be the object init() returned, got ${fmtValue(state)}`);
    const step = state.step;
    if (!(Number.isInteger(step) && step >= 0)) fail('adamw', `state.step must be an integer ≥ 0, got ${fmtValue(step)}`);
    checkSameTree('adamw', params, 'params', params, 'params');
    checkSameTree('adamw', params, 'params', grads, 'grads');
    checkSameTree('adamw', params, 'params', state.m, 'state.m');
    checkSameTree('adamw', params, 'params', state.v, 'state.v');
    const gradScale = checkGradScale(opts);

    const t = step + 1;
    const rate = lrAt(t);
    const bc1 = 1 - beta1 ** t;
    const base = { beta1, beta2, eps, stepSize: rate / bc1, sqrtBc2: Math.sqrt(1 - beta2 ** t) };
    const decayed = { ...base, lrWd: rate * weightDecay };
    const plain = { ...base, lrWd: 0 };

    const coefficientsAt = (p: Tensor, path: string): AdamWStepCoefficients => {
      if (weightDecay === 0) return plain;
      const yes = decay(path, p);
      if (typeof yes !== 'boolean') fail('adamw', `decay(${JSON.stringify(path)}) returned ${fmtValue(yes)}; it must return a boolean`);
      return yes ? decayed : plain;
    };

    const leaf = ([p, g, m, v]: Tensor[], path: readonly PathSegment[]): Tensor[] => {
      if (!isFloat(p.dtype)) return [stopGradient(p), stopGradient(m), stopGradient(v)];
      if (gradScale && gradScale.backend !== p.backend) {
        fail('adamw', `gradScale lives on ${gradScale.backend.name} but ${fmtPath('params', path)} on ${p.backend.name}`);
      }
      // each leaf's temporaries are freed before the next leaf is updated
      return adamwStep(p, g, m, v, coefficientsAt(p, dottedPath(path)), impl, gradScale);
    };

    return noGrad(() =>
      tidy(() => {
        const [p1, m1, v1] = zipTree([params, grads, state.m, state.v], [0, 2, 3], leaf);
        return { params: p1 as P, state: { step: t, m: m1 as P, v: v1 as P } };
      }),
    );
  };

  const updateAndDispose = (params: P, grads: P, state: AdamWState<P>, opts?: AdamWUpdateOptions): { params: P; state: AdamWState<P> } => {
    const out = update(params, grads, state, opts);
    dispose([params, state.m, state.v]);
    return out;
  };

  return { options, init, update, updateAndDispose };
}
