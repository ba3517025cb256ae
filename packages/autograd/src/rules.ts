import {
  add,
  arange,
  cast,
  concat,
  cos,
  cumsum,
  div,
  eq,
  expand,
  gt,
  isFloat,
  log,
  lt,
  matmul,
  mul,
  narrow,
  neg,
  type Prim,
  type PrimParams,
  permute,
  pow,
  reshape,
  type Shape,
  sigmoid,
  sign,
  sin,
  sub,
  sum,
  type Tensor,
  take,
  takeAdjoint,
  transpose,
  type UnaryOp,
  where,
  zeros,
} from '@foxgate/tensor';
import { unbroadcast } from './unbroadcast.js';

/**
 * What a VJP rule sees of its forward node. `inputs[i]` / `output` are alive (readable) only
 * where the rule's `save` asked for them; the others are the original tensors, which may have
 * been disposed already: read only their `shape` and `dtype`.
 */
export interface NodeValues<P extends Prim> {
  readonly inputs: readonly Tensor[];
  readonly output: Tensor;
  readonly params: PrimParams[P];
  /** `needs[i]`: input i requires a gradient (skip the work for the others; return null). */
  readonly needs: readonly boolean[];
}

/** Which forward values a rule reads in its backward: input positions and/or the output. */
export interface Save {
  readonly inputs: readonly number[];
  readonly output: boolean;
}

/**
 * The VJP of one primitive: given the output gradient `g` (same shape as the output), the
 * gradient for every input (same shape and dtype as that input) or null. Rules run with
 * recording off, inside a scope that frees their temporaries; they may return `g` itself.
 */
export interface Rule<P extends Prim> {
  /** Gradients are null/zero everywhere: the tape does not even record the primitive. */
  readonly nondiff?: true;
  save(needs: readonly boolean[], params: PrimParams[P]): Save;
  vjp(g: Tensor, node: NodeValues<P>): (Tensor | null)[];
}

const NONE: Save = { inputs: [], output: false };
const X: Save = { inputs: [0], output: false };
const Y: Save = { inputs: [], output: true };
const XY: Save = { inputs: [0], output: true };
const AB: Save = { inputs: [0, 1], output: false };

function nondiff<P extends Prim>(): Rule<P> {
  return { nondiff: true, save: () => NONE, vjp: (_g, n) => n.inputs.map(() => null) };
}

/** An elementwise unary rule `dx = d(g, x, y)`. */
function unary<P extends UnaryOp>(save: Save, d: (g: Tensor, x: Tensor, y: Tensor) => Tensor): Rule<P> {
  return { save: () => save, vjp: (g, n) => [d(g, n.inputs[0], n.output)] };
}

/** `shape` with 1 at the reduced `axes` (the keepdims shape of a reduction of `shape`). */
function keepShape(shape: Shape, axes: readonly number[]): number[] {
  return shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

/** Brings a reduction's output (or its gradient) back to the keepdims layout. */
function toKeep(t: Tensor, inShape: Shape, axes: readonly number[], keepdims: boolean): Tensor {
  return keepdims ? t : reshape(t, keepShape(inShape, axes));
}

/** max/min: the gradient is shared equally among all elements equal to the extremum. */
function extremumRule<P extends 'max' | 'min'>(): Rule<P> {
  return {
    save: () => XY,
    vjp: (g, n) => {
      const x = n.inputs[0];
      const { axes, keepdims } = n.params;
      const yk = toKeep(n.output, x.shape, axes, keepdims);
      const gk = toKeep(g, x.shape, axes, keepdims);
      const mask = cast(eq(x, yk), x.dtype);
      const count = sum(mask, axes, true);
      return [mul(mask, div(gk, count))];
    },
  };
}

/** maximum/minimum: all to the winning side, split half/half on ties. */
function pickRule<P extends 'maximum' | 'minimum'>(wins: (a: Tensor, b: Tensor) => Tensor): Rule<P> {
  return {
    save: () => AB,
    vjp: (g, n) => {
      const [a, b] = n.inputs;
      // a's share of g: 1 where a wins, ½ on ties, 0 where b wins; b gets the rest
      const shareA = add(cast(wins(a, b), g.dtype), mul(cast(eq(a, b), g.dtype), 0.5));
      return [n.needs[0] ? unbroadcast(mul(g, shareA), a.shape) : null, n.needs[1] ? unbroadcast(mul(g, sub(1, shareA)), b.shape) : null];
    },
  };
}

/** Adjoint of a strided slice: zeros of the input shape with `g` written at the sliced positions. */
function sliceAdjoint(g: Tensor, inShape: Shape, p: PrimParams['slice']): Tensor {
  const opts = { dtype: g.dtype, backend: g.backend };
  if (g.size === 0) return zeros(inShape, opts);
  let cur = g;
  for (let a = 0; a < inShape.length; a++) {
    const n = inShape[a];
    const m = cur.shape[a];
    const start = p.starts[a];
    const step = p.steps[a];
    if (m === n) continue; // whole axis taken (start 0, step 1)
    const full = [...cur.shape];
    full[a] = n;
    if (step === 1) {
      const parts: Tensor[] = [];
      const padShape = (len: number) => cur.shape.map((d, i) => (i === a ? len : d));
      if (start > 0) parts.push(zeros(padShape(start), opts));
      parts.push(cur);
      const after = n - start - m;
      if (after > 0) parts.push(zeros(padShape(after), opts));
      cur = concat(parts, a);
    } else {
      const idx = arange(start, start + m * step, step, { backend: g.backend, dtype: 'int32' });
      cur = takeAdjoint(cur, idx, a, full);
    }
  }
  return cur;
}

/**
 * The VJP table: one rule per primitive of `PrimParams`. A primitive added to the tensor
 * package without a rule here is a compile error.
 */
export const rules: { [P in Prim]: Rule<P> } = {
  // ---- unary ------------------------------------------------------------------------------
  neg: unary(NONE, (g) => neg(g)),
  abs: unary(X, (g, x) => mul(g, sign(x))), // d|x|/dx = sign(x), 0 at x = 0
  sign: nondiff(),
  exp: unary(Y, (g, _x, y) => mul(g, y)),
  log: unary(X, (g, x) => div(g, x)),
  log1p: unary(X, (g, x) => div(g, add(x, 1))),
  sqrt: unary(Y, (g, _x, y) => div(g, mul(y, 2))),
  rsqrt: unary(Y, (g, _x, y) => mul(g, mul(mul(mul(y, y), y), -0.5))),
  sin: unary(X, (g, x) => mul(g, cos(x))),
  cos: unary(X, (g, x) => neg(mul(g, sin(x)))),
  tanh: unary(Y, (g, _x, y) => mul(g, sub(1, mul(y, y)))),
  sigmoid: unary(Y, (g, _x, y) => mul(g, mul(y, sub(1, y)))),
  logsigmoid: unary(X, (g, x) => mul(g, sigmoid(neg(x)))), // 1 − σ(x) = σ(−x)
  relu: unary(Y, (g, _x, y) => where(gt(y, 0), g, 0)), // relu'(0) = 0
  silu: unary(X, (g, x) => {
    const s = sigmoid(x); // d/dx x·σ(x) = σ(x)·(1 + x·(1 − σ(x)))
    return mul(g, mul(s, add(mul(x, sub(1, s)), 1)));
  }),
  floor: nondiff(),
  not: nondiff(),

  // ---- binary -----------------------------------------------------------------------------
  add: {
    save: () => NONE,
    vjp: (g, { inputs: [a, b], needs }) => [needs[0] ? unbroadcast(g, a.shape) : null, needs[1] ? unbroadcast(g, b.shape) : null],
  },
  sub: {
    save: () => NONE,
    vjp: (g, { inputs: [a, b], needs }) => [needs[0] ? unbroadcast(g, a.shape) : null, needs[1] ? unbroadcast(neg(g), b.shape) : null],
  },
  mul: {
    save: (needs) => ({ inputs: [...(needs[1] ? [0] : []), ...(needs[0] ? [1] : [])], output: false }),
    vjp: (g, { inputs: [a, b], needs }) => [
      needs[0] ? unbroadcast(mul(g, b), a.shape) : null,
      needs[1] ? unbroadcast(mul(g, a), b.shape) : null,
    ],
  },
  div: {
    save: (needs) => ({ inputs: [1], output: needs[1] }),
    vjp: (g, { inputs: [a, b], output: y, needs }) => [
      needs[0] ? unbroadcast(div(g, b), a.shape) : null,
      needs[1] ? unbroadcast(neg(div(mul(g, y), b)), b.shape) : null, // d(a/b)/db = −y/b
    ],
  },
  pow: {
    save: (needs) => ({ inputs: needs[0] ? [0, 1] : [0], output: needs[1] }),
    vjp: (g, { inputs: [a, b], output: y, needs }) => {
      // d/da a^b = b·a^(b−1); d/db a^b = a^b·log(a), taken as 0 where a ≤ 0
      const da = needs[0] ? unbroadcast(mul(g, mul(b, pow(a, sub(b, 1)))), a.shape) : null;
      let db: Tensor | null = null;
      if (needs[1]) {
        const pos = gt(a, 0);
        const logA = log(where(pos, a, 1));
        db = unbroadcast(mul(g, where(pos, mul(y, logA), 0)), b.shape);
      }
      return [da, db];
    },
  },
  maximum: pickRule((a, b) => gt(a, b)),
  minimum: pickRule((a, b) => lt(a, b)),
  lt: nondiff(),
  le: nondiff(),
  gt: nondiff(),
  ge: nondiff(),
  eq: nondiff(),
  ne: nondiff(),
  and: nondiff(),
  or: nondiff(),

  // ---- other elementwise -------------------------------------------------------------------
  where: {
    save: () => X,
    vjp: (g, { inputs: [cond, a, b], needs }) => [
      null,
      needs[1] ? unbroadcast(where(cond, g, 0), a.shape) : null,
      needs[2] ? unbroadcast(where(cond, 0, g), b.shape) : null,
    ],
  },
  cast: {
    save: () => NONE,
    // float → float casts pass the gradient (cast back); casts to int/bool are never recorded
    vjp: (g, { inputs: [x] }) => [isFloat(x.dtype) ? cast(g, x.dtype) : null],
  },

  // ---- reductions -------------------------------------------------------------------------
  sum: {
    save: () => NONE,
    vjp: (g, { inputs: [x], params: { axes, keepdims } }) => [expand(toKeep(g, x.shape, axes, keepdims), x.shape)],
  },
  max: extremumRule(),
  min: extremumRule(),
  argmax: nondiff(),

  // ---- linear algebra and scans ------------------------------------------------------------
  matmul: {
    save: (needs) => ({ inputs: [...(needs[1] ? [0] : []), ...(needs[0] ? [1] : [])], output: false }),
    vjp: (g, { inputs: [a, b], needs }) => {
      // a: [...A, M, K], b: [...B, K, N], g: [...batch, M, N]
      const da = needs[0] ? unbroadcast(matmul(g, transpose(b)), a.shape) : null;
      let db: Tensor | null = null;
      if (needs[1]) {
        if (b.rank === 2 && a.rank > 2) {
          // shared weight (x @ W): one [K, rows] @ [rows, N] product instead of a batch + sum
          const a2 = reshape(a, [-1, a.shape[a.rank - 1]]);
          const g2 = reshape(g, [-1, g.shape[g.rank - 1]]);
          db = matmul(transpose(a2), g2);
        } else {
          db = unbroadcast(matmul(transpose(a), g), b.shape);
        }
      }
      return [da, db];
    },
  },
  cumsum: {
    save: () => NONE,
    // y_i = Σ_{j≤i} x_j  ⇒  dx_j = Σ_{i≥j} g_i: the cumsum of g in the other direction
    vjp: (g, { params: { axis, reverse } }) => [cumsum(g, axis, { reverse: !reverse })],
  },
  softmax: {
    save: () => Y,
    // y = softmax(x) ⇒ dx = y ∘ (g − Σ_axis g∘y) (a rank-0 softmax is the constant 1: dx = 0)
    vjp: (g, { output: y, params: { axis } }) => {
      const gy = mul(g, y);
      return [mul(y, sub(g, y.rank === 0 ? gy : sum(gy, axis, true)))];
    },
  },

  // ---- indexing ----------------------------------------------------------------------------
  take: {
    save: () => ({ inputs: [1], output: false }),
    vjp: (g, { inputs: [x, index], params: { axis } }) => [takeAdjoint(g, index, axis, x.shape), null],
  },
  takeAdjoint: {
    save: () => ({ inputs: [1], output: false }),
    vjp: (g, { inputs: [, index], params: { axis } }) => [take(g, index, axis), null],
  },
  concat: {
    save: () => NONE,
    vjp: (g, { inputs, needs, params: { axis } }) => {
      let off = 0;
      return inputs.map((x, i) => {
        const len = x.shape[axis];
        const gi = needs[i] ? narrow(g, axis, off, len) : null;
        off += len;
        return gi;
      });
    },
  },

  // ---- views and copies --------------------------------------------------------------------
  reshape: { save: () => NONE, vjp: (g, { inputs: [x] }) => [reshape(g, x.shape)] },
  permute: {
    save: () => NONE,
    vjp: (g, { params: { perm } }) => {
      const inv = new Array<number>(perm.length);
      perm.forEach((p, i) => {
        inv[p] = i;
      });
      return [permute(g, inv)];
    },
  },
  expand: { save: () => NONE, vjp: (g, { inputs: [x] }) => [unbroadcast(g, x.shape)] },
  slice: { save: () => NONE, vjp: (g, { inputs: [x], params }) => [sliceAdjoint(g, x.shape, params)] },
  contiguous: { save: () => NONE, vjp: (g) => [g] },
};
