import type { Backend, Tensor } from '@foxgate/tensor';
import * as T from '@foxgate/tensor';
import { noGrad } from '../src/index.js';
import { lcg } from './util.js';

export interface Mlp {
  w1: Tensor;
  b1: Tensor;
  w2: Tensor;
  b2: Tensor;
}

type Where = string | Backend;

function hostTensor(shape: number[], backend: Where, gen: () => number, scale: number): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = (gen() * 2 - 1) * scale;
  return T.tensor(data, shape, { backend });
}

/** Parameters of an `inDim → hidden → out` MLP from a fixed seed (same values on every backend). */
export function initMlp(backend: Where, [inDim, hidden, out] = [8, 16, 4], seed = 1): Mlp {
  const gen = lcg(seed);
  return {
    w1: hostTensor([inDim, hidden], backend, gen, 1 / Math.sqrt(inDim)),
    b1: hostTensor([hidden], backend, gen, 0.1),
    w2: hostTensor([hidden, out], backend, gen, 1 / Math.sqrt(hidden)),
    b2: hostTensor([out], backend, gen, 0.1),
  };
}

/** A fixed classification problem: inputs `[n, inDim]`, labels = argmax of a fixed linear teacher. */
export function problem(backend: Where, n = 32, inDim = 8, classes = 4, seed = 99): { x: Tensor; y: Tensor } {
  const gen = lcg(seed);
  const xs = new Float32Array(n * inDim);
  for (let i = 0; i < xs.length; i++) xs[i] = gen() * 4 - 2;
  const teacher = Array.from({ length: inDim * classes }, () => gen() * 2 - 1);
  const ys = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    let best = 0;
    let bestV = Number.NEGATIVE_INFINITY;
    for (let c = 0; c < classes; c++) {
      let v = 0;
      for (let k = 0; k < inDim; k++) v += xs[r * inDim + k] * teacher[k * classes + c];
      if (v > bestV) {
        bestV = v;
        best = c;
      }
    }
    ys[r] = best;
  }
  return { x: T.tensor(xs, [n, inDim], { backend }), y: T.tensor(ys, [n], { backend }) };
}

export function mlpLoss(p: Mlp, x: Tensor, y: Tensor, act: (t: Tensor) => Tensor = T.tanh): Tensor {
  const h = act(T.add(T.matmul(x, p.w1), p.b1));
  return T.crossEntropy(T.add(T.matmul(h, p.w2), p.b2), y);
}

/** Plain SGD: returns `p − lr·g` and disposes the old parameters and the gradients. */
export function sgd(p: Mlp, grads: Mlp, lr: number): Mlp {
  const next = noGrad(() =>
    T.tidy(() => {
      const out = {} as Mlp;
      for (const k of Object.keys(p) as (keyof Mlp)[]) out[k] = T.sub(p[k], T.mul(grads[k], lr));
      return out;
    }),
  );
  T.dispose([p, grads]);
  return next;
}
