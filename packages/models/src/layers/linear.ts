import { add, type Backend, type DType, fail, fmtShape, matmul, type RngKeyLike, randomNormal, type Tensor, zeros } from '@foxgate/tensor';
import { checkDim, checkFloat, checkTensor, fmtTensor } from '../check.js';

/** Parameters of a linear layer: `y = x·w + b`. */
export interface LinearParams {
  /** Weight `[in, out]` (note: PyTorch's `nn.Linear.weight` is the transpose, `[out, in]`). */
  w: Tensor;
  /** Optional bias `[out]`. */
  b?: Tensor;
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
  /** Standard deviation of the weights; default `1/√inDim`. */
  std?: number;
}

/**
 * Initialises a linear layer: `w ~ N(0, std²)` of shape `[inDim, outDim]` drawn from the
 * counter-based RNG `key` (the same key gives the same weights on every backend), `b = 0`
 * (`[outDim]`, only with `bias: true`). `std` defaults to `1/√inDim`.
 */
export function initLinear(key: RngKeyLike, inDim: number, outDim: number, opts: LinearInitOptions = {}): LinearParams {
  checkDim('initLinear', 'inDim', inDim);
  checkDim('initLinear', 'outDim', outDim);
  const std = opts.std ?? 1 / Math.sqrt(inDim);
  if (typeof std !== 'number' || !Number.isFinite(std) || std < 0)
    fail('initLinear', `std must be a finite number >= 0, got ${String(std)}`);
  const dtype = opts.dtype ?? 'float32';
  checkFloat('initLinear', 'dtype', dtype);
  const create = { dtype, backend: opts.backend };
  const w = randomNormal(key, [inDim, outDim], { ...create, std });
  return opts.bias ? { w, b: zeros([outDim], create) } : { w };
}

/**
 * Checks that `p` is `{w: [in,out], b?: [out]}` of one float dtype and backend; `op`/`name` say
 * where the layer sits in messages. Returns `[in, out]`.
 */
export function checkLinearParams(op: string, name: string, p: LinearParams): [number, number] {
  if (p === null || typeof p !== 'object') fail(op, `${name} must be {w, b?}, got ${p === null ? 'null' : typeof p}`);
  checkTensor(op, `${name}.w`, p.w);
  if (p.w.rank !== 2) fail(op, `${name}.w must be [in,out], got ${fmtShape(p.w.shape)}`);
  checkFloat(op, `${name}.w`, p.w.dtype);
  const [inDim, outDim] = p.w.shape;
  if (p.b !== undefined && p.b !== null) {
    checkTensor(op, `${name}.b`, p.b);
    if (p.b.rank !== 1 || p.b.shape[0] !== outDim) {
      fail(op, `${name}.b must be [${outDim}] for ${name}.w ${fmtShape(p.w.shape)}, got ${fmtShape(p.b.shape)}`);
    }
    if (p.b.dtype !== p.w.dtype) fail(op, `dtypes differ: ${name}.w ${fmtTensor(p.w)} and ${name}.b ${fmtTensor(p.b)}`);
    if (p.b.backend !== p.w.backend) fail(op, `${name}.w lives on ${p.w.backend.name} but ${name}.b on ${p.b.backend.name}`);
  }
  return [inDim, outDim];
}

/** Checks a layer `p` and its input `x` (`[..., in]`, same dtype and backend). */
export function checkLinear(op: string, name: string, p: LinearParams, x: Tensor): void {
  const [inDim] = checkLinearParams(op, name, p);
  checkTensor(op, 'x', x);
  if (x.rank < 1) fail(op, `x must be [...,${inDim}], got a scalar ${fmtShape(x.shape)}`);
  const last = x.shape[x.rank - 1];
  if (last !== inDim) fail(op, `x ${fmtShape(x.shape)} has last dim ${last} but ${name}.w ${fmtShape(p.w.shape)} expects ${inDim}`);
  if (x.dtype !== p.w.dtype) fail(op, `dtypes differ: x ${fmtTensor(x)} and ${name}.w ${fmtTensor(p.w)}`);
  if (x.backend !== p.w.backend) fail(op, `x lives on ${x.backend.name} but ${name}.w on ${p.w.backend.name}; move one with toBackend()`);
}

/** Applies the layer without checks (callers have run `checkLinear`). */
export function applyLinear(p: LinearParams, x: Tensor): Tensor {
  const y = matmul(x, p.w);
  if (!p.b) return y;
  const out = add(y, p.b);
  y.dispose();
  return out;
}

/**
 * `y = x·w + b` for `x` of shape `[..., in]` → `[..., out]` (any number of leading dims; the
 * product is one batched matmul). Differentiable by @foxgate/autograd.
 */
export function linear(p: LinearParams, x: Tensor): Tensor {
  checkLinear('linear', 'p', p, x);
  return applyLinear(p, x);
}
