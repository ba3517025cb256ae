import { fail, fmtShape, mul, type RngKeyLike, silu, split, type Tensor } from '@foxgate/tensor';
import { checkDim, fmtTensor } from '../check.js';
import { applyLinear, checkLinear, checkLinearParams, type InitOptions, initLinear, type LinearParams } from './linear.js';

/** Parameters of the Transformer++ (LLaMA) MLP: three bias-free projections. */
export interface SwiGLUParams {
  /** `[dim, hidden]`. */
  gate: LinearParams;
  /** `[dim, hidden]`. */
  up: LinearParams;
  /** `[hidden, dim]`. */
  down: LinearParams;
}

export interface SwiGLUInitOptions extends InitOptions {
  /** Standard deviation of every projection; default `1/√fanIn` (`1/√dim` for gate/up, `1/√hidden` for down). */
  std?: number;
}

/**
 * Initialises a SwiGLU MLP `dim → hidden → dim` without biases. `key` is split into three
 * (gate, up, down, in that order); each weight is `N(0, std²)` as in `initLinear`.
 */
export function initSwiGLU(key: RngKeyLike, dim: number, hidden: number, opts: SwiGLUInitOptions = {}): SwiGLUParams {
  checkDim('initSwiGLU', 'dim', dim);
  checkDim('initSwiGLU', 'hidden', hidden);
  const [kGate, kUp, kDown] = split(key, 3);
  const o = { dtype: opts.dtype, backend: opts.backend, std: opts.std };
  return {
    gate: initLinear(kGate, dim, hidden, o),
    up: initLinear(kUp, dim, hidden, o),
    down: initLinear(kDown, hidden, dim, o),
  };
}

/**
 * The Transformer++ MLP: `down(silu(x·W_gate) ⊙ (x·W_up))` for `x` `[..., dim]` → `[..., dim]`.
 * Biases are added when the projections have them.
 */
export function swiglu(p: SwiGLUParams, x: Tensor): Tensor {
  if (p === null || typeof p !== 'object') fail('swiglu', `p must be {gate, up, down}, got ${p === null ? 'null' : typeof p}`);
  checkLinear('swiglu', 'p.gate', p.gate, x);
  checkLinear('swiglu', 'p.up', p.up, x);
  const hidden = p.gate.w.shape[1];
  if (p.up.w.shape[1] !== hidden) fail('swiglu', `p.gate.w ${fmtShape(p.gate.w.shape)} and p.up.w ${fmtShape(p.up.w.shape)} differ`);
  const dim = p.gate.w.shape[0];
  const [downIn, downOut] = checkLinearParams('swiglu', 'p.down', p.down);
  if (downIn !== hidden || downOut !== dim) {
    fail('swiglu', `p.down.w must be [${hidden},${dim}] for p.gate.w ${fmtShape(p.gate.w.shape)}, got ${fmtShape(p.down.w.shape)}`);
  }
  if (p.down.w.dtype !== x.dtype) fail('swiglu', `dtypes differ: x ${fmtTensor(x)} and p.down.w ${fmtTensor(p.down.w)}`);
  if (p.down.w.backend !== x.backend) fail('swiglu', `x lives on ${x.backend.name} but p.down.w on ${p.down.w.backend.name}`);
  const g = applyLinear(p.gate, x);
  const a = silu(g);
  g.dispose();
  const u = applyLinear(p.up, x);
  const h = mul(a, u);
  a.dispose();
  u.dispose();
  const out = applyLinear(p.down, h);
  h.dispose();
  return out;
}
