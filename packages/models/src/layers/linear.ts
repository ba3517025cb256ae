import {
  add,
  type Backend,
  type DType,
  fail,
  fmtShape,
  matmul,
  type RngKeyLike,
  randomNormal,
  type Tensor,
  transpose,
  zeros,
} from '@foxgate/tensor';
import { checkDim, checkFloat, checkTensor, fmtTensor } from '../check.js';

/** Parameters of a linear layer: `y = x·weightᵀ + bias` (PyTorch's `nn.Linear` layout and names). */
export interface LinearParams {
  /** Weight `[out, in]`. */
  weight: Tensor;
  /** Optional bias `[out]`. */
  bias?: Tensor;
}

/** Options shared by the initialisers. */
export interface InitOptions {
  /** float32 (default) or float64 (CPU only; for references and gradient checks). */
  dtype?: DType;
  /** Backend name or object; default: the default backend. */
  backend?: string | Backend;
}

export interface LinearInitOptions extends InitOptions {
  /** Add a bias (zeros); default false. */
  bias?: boolean;
  /** Standard deviation of the weights; default 0.02 (the FoX models' `initializer_range`). */
  std?: number;
}

/**
 * Initialises a linear layer: `weight ~ N(0, std²)` of shape `[outDim, inDim]` drawn from the
 * counter-based RNG `key` (the same key gives the same weights on every backend), `bias = 0`
 * (`[outDim]`, only with `bias: true`). `std` defaults to 0.02.
 */
export function initLinear(key: RngKeyLike, inDim: number, outDim: number, opts: LinearInitOptions = {}): LinearParams {
  checkDim('initLinear', 'inDim', inDim);
  checkDim('initLinear', 'outDim', outDim);
  const std = opts.std ?? 0.02;
  if (typeof std !== 'number' || !Number.isFinite(std) || std < 0)
    fail('initLinear', `std must be a finite number >= 0, got ${String(std)}`);
  const dtype = opts.dtype ?? 'float32';
  checkFloat('initLinear', 'dtype', dtype);
  const create = { dtype, backend: opts.backend };
  const weight = randomNormal(key, [outDim, inDim], { ...create, std });
  return opts.bias ? { weight, bias: zeros([outDim], create) } : { weight };
}

/**
 * Checks that `p` is `{weight: [out,in], bias?: [out]}` of one float dtype and backend; `op`/`name` say
 * where the layer sits in messages. Returns `[in, out]`.
 */
export function checkLinearParams(op: string, name: string, p: LinearParams): [number, number] {
  if (p === null || typeof p !== 'object') fail(op, `${name} must be {weight, bias?}, got ${p === null ? 'null' : typeof p}`);
  checkTensor(op, `${name}.weight`, p.weight);
  if (p.weight.rank !== 2) fail(op, `${name}.weight must be [out,in], got ${fmtShape(p.weight.shape)}`);
  checkFloat(op, `${name}.weight`, p.weight.dtype);
  const [outDim, inDim] = p.weight.shape;
  if (p.bias !== undefined && p.bias !== null) {
    checkTensor(op, `${name}.bias`, p.bias);
    if (p.bias.rank !== 1 || p.bias.shape[0] !== outDim) {
      fail(op, `${name}.bias must be [${outDim}] for ${name}.weight ${fmtShape(p.weight.shape)}, got ${fmtShape(p.bias.shape)}`);
    }
    if (p.bias.dtype !== p.weight.dtype)
      fail(op, `dtypes differ: ${name}.weight ${fmtTensor(p.weight)} and ${name}.bias ${fmtTensor(p.bias)}`);
    if (p.bias.backend !== p.weight.backend)
      fail(op, `${name}.weight lives on ${p.weight.backend.name} but ${name}.bias on ${p.bias.backend.name}`);
  }
  return [inDim, outDim];
}

/** Checks a layer `p` and its input `x` (`[..., in]`, same dtype and backend). */
export function checkLinear(op: string, name: string, p: LinearParams, x: Tensor): void {
  const [inDim] = checkLinearParams(op, name, p);
  checkTensor(op, 'x', x);
  if (x.rank < 1) fail(op, `x must be [...,${inDim}], got a scalar ${fmtShape(x.shape)}`);
  const last = x.shape[x.rank - 1];
  if (last !== inDim)
    fail(op, `x ${fmtShape(x.shape)} has last dim ${last} but ${name}.weight ${fmtShape(p.weight.shape)} expects ${inDim}`);
  if (x.dtype !== p.weight.dtype) fail(op, `dtypes differ: x ${fmtTensor(x)} and ${name}.weight ${fmtTensor(p.weight)}`);
  if (x.backend !== p.weight.backend)
    fail(op, `x lives on ${x.backend.name} but ${name}.weight on ${p.weight.backend.name}; move one with toBackend()`);
}

/** Applies the layer without checks (callers have run `checkLinear`). */
export function applyLinear(p: LinearParams, x: Tensor): Tensor {
  const wt = transpose(p.weight);
  const y = matmul(x, wt);
  wt.dispose();
  if (!p.bias) return y;
  const out = add(y, p.bias);
  y.dispose();
  return out;
}

/**
 * `y = x·weightᵀ + bias` for `x` of shape `[..., in]` → `[..., out]` (any number of leading dims;
 * the product is one matmul with a transposed view, no copy). Differentiable by @foxgate/autograd.
 */
export function linear(p: LinearParams, x: Tensor): Tensor {
  checkLinear('linear', 'p', p, x);
  return applyLinear(p, x);
}
