import * as T from '@foxgate/tensor';
import { type Prim, setRecorder, type Tensor, tidy } from '@foxgate/tensor';
import { describe, expect, it } from 'vitest';
import { gradcheck, rules, valueAndGrad } from '../src/index.js';
import { reseed, rnd, rndAway, wsum } from './util.js';

/**
 * One or more cases per primitive. `zero: true` marks a non-differentiable use: every input
 * gradient must be exactly zero. Typed by `Prim`, so a new primitive without a case here is a
 * compile error (as in the rule table).
 */
interface Case {
  name: string;
  inputs: () => Tensor[];
  f: (...xs: Tensor[]) => Tensor;
  zero?: true;
}

const i32 = (data: number[], shape: number[]) => T.tensor(data, shape, { dtype: 'int32' });
const f64 = (x: Tensor) => T.cast(x, 'float64');

/** A unary op on a plain, a permuted and a strided-sliced input. */
function unaryCases(op: (x: Tensor) => Tensor, gen: (shape: number[]) => Tensor): Case[] {
  return [
    { name: 'contiguous [3,4]', inputs: () => [gen([3, 4])], f: (x) => wsum(op(x)) },
    { name: 'permuted view', inputs: () => [gen([2, 3, 4])], f: (x) => wsum(op(T.permute(x, [2, 0, 1]))) },
    {
      name: 'strided slice',
      inputs: () => [gen([5, 6])],
      f: (x) =>
        wsum(
          op(
            T.slice(x, [
              [1, 5, 2],
              [0, 6, 3],
            ]),
          ),
        ),
    },
  ];
}

/** A binary op with broadcasting, with an expanded view and with a transposed view. */
function binaryCases(op: (a: Tensor, b: Tensor) => Tensor, ga: (s: number[]) => Tensor, gb: (s: number[]) => Tensor = ga): Case[] {
  return [
    { name: 'same shape', inputs: () => [ga([3, 4]), gb([3, 4])], f: (a, b) => wsum(op(a, b)) },
    { name: 'broadcast [3,1,4] with [2,4]', inputs: () => [ga([3, 1, 4]), gb([2, 4])], f: (a, b) => wsum(op(a, b)) },
    { name: 'broadcast scalar with [2,3]', inputs: () => [ga([]), gb([2, 3])], f: (a, b) => wsum(op(a, b)) },
    {
      name: 'expanded and transposed views',
      inputs: () => [ga([3, 1]), gb([4, 3])],
      f: (a, b) => wsum(op(T.expand(a, [3, 4]), T.transpose(b))),
    },
  ];
}

/** A non-differentiable use: the float result of the op times the inputs must give zero gradient through the op. */
function zeroCase(name: string, inputs: () => Tensor[], f: (...xs: Tensor[]) => Tensor): Case {
  return { name, inputs, f, zero: true };
}

const pos = (s: number[]) => rnd(s, 0.3, 2);
const any = (s: number[]) => rnd(s, -2, 2);
const away = (s: number[]) => rndAway(s, 0.2, 2);

const cases: { [P in Prim]: Case[] } = {
  neg: unaryCases(T.neg, any),
  abs: unaryCases(T.abs, away),
  sign: [
    zeroCase(
      'sign',
      () => [away([3, 4])],
      (x) => wsum(T.sign(x)),
    ),
  ],
  exp: unaryCases(T.exp, any),
  log: unaryCases(T.log, pos),
  log1p: unaryCases(T.log1p, (s) => rnd(s, -0.7, 2)),
  sqrt: unaryCases(T.sqrt, pos),
  rsqrt: unaryCases(T.rsqrt, pos),
  sin: unaryCases(T.sin, any),
  cos: unaryCases(T.cos, any),
  tanh: unaryCases(T.tanh, any),
  sigmoid: unaryCases(T.sigmoid, any),
  logsigmoid: [
    ...unaryCases(T.logsigmoid, any),
    { name: 'large |x|', inputs: () => [T.tensor([-30, -5, 5, 30], [4], { dtype: 'float64' })], f: (x) => wsum(T.logsigmoid(x)) },
  ],
  relu: unaryCases(T.relu, away),
  silu: unaryCases(T.silu, any),
  floor: [
    zeroCase(
      'floor',
      () => [rnd([3, 4], -3, 3)],
      (x) => wsum(T.floor(x)),
    ),
  ],
  not: [
    zeroCase(
      'not of a comparison',
      () => [any([3, 4])],
      (x) => wsum(f64(T.logicalNot(T.gt(x, 0)))),
    ),
  ],

  add: binaryCases(T.add, any),
  sub: binaryCases(T.sub, any),
  mul: [...binaryCases(T.mul, any), { name: 'x·x (same tensor twice)', inputs: () => [any([3, 4])], f: (x) => wsum(T.mul(x, x)) }],
  div: binaryCases(T.div, any, away),
  pow: [...binaryCases(T.pow, pos, any), { name: 'x^2 (number exponent)', inputs: () => [any([3, 4])], f: (x) => wsum(T.pow(x, 2)) }],
  maximum: binaryCases(T.maximum, any),
  minimum: binaryCases(T.minimum, any),
  lt: [
    zeroCase(
      'lt',
      () => [any([3, 4]), any([4])],
      (a, b) => wsum(f64(T.lt(a, b))),
    ),
  ],
  le: [
    zeroCase(
      'le',
      () => [any([3, 4]), any([4])],
      (a, b) => wsum(f64(T.le(a, b))),
    ),
  ],
  gt: [
    zeroCase(
      'gt',
      () => [any([3, 4]), any([4])],
      (a, b) => wsum(f64(T.gt(a, b))),
    ),
  ],
  ge: [
    zeroCase(
      'ge',
      () => [any([3, 4]), any([4])],
      (a, b) => wsum(f64(T.ge(a, b))),
    ),
  ],
  eq: [
    zeroCase(
      'eq',
      () => [T.floor(any([3, 4])), T.floor(any([4]))],
      (a, b) => wsum(f64(T.eq(a, b))),
    ),
  ],
  ne: [
    zeroCase(
      'ne',
      () => [T.floor(any([3, 4])), T.floor(any([4]))],
      (a, b) => wsum(f64(T.ne(a, b))),
    ),
  ],
  and: [
    zeroCase(
      'and',
      () => [any([3, 4]), any([4])],
      (a, b) => wsum(f64(T.logicalAnd(T.gt(a, 0), T.gt(b, 0)))),
    ),
  ],
  or: [
    zeroCase(
      'or',
      () => [any([3, 4]), any([4])],
      (a, b) => wsum(f64(T.logicalOr(T.gt(a, 0), T.gt(b, 0)))),
    ),
  ],

  where: [
    {
      name: 'cond [4], a [3,4], b [3,1]',
      inputs: () => [any([4]), any([3, 4]), any([3, 1])],
      f: (c, a, b) => wsum(T.where(T.gt(c, 0), a, b)),
    },
    {
      name: 'cond from a (no gradient through cond), b a transposed view',
      inputs: () => [any([3, 4]), any([4, 3])],
      f: (a, b) => wsum(T.where(T.gt(a, 0.1), T.mul(a, a), T.transpose(b))),
    },
  ],
  cast: [
    // float64 → float64 is the only float cast gradcheck can resolve; float32 round trips are checked in api.test.ts
    { name: 'float64 → float64', inputs: () => [any([3, 4])], f: (x) => wsum(T.cast(x, 'float64')) },
    zeroCase(
      'float → int32 → float',
      () => [rnd([3, 4], -5, 5)],
      (x) => wsum(f64(T.cast(x, 'int32'))),
    ),
    zeroCase(
      'float → bool → float',
      () => [away([3, 4])],
      (x) => wsum(f64(T.cast(x, 'bool'))),
    ),
  ],

  sum: [
    { name: 'all axes', inputs: () => [any([3, 4])], f: (x) => T.mul(T.sum(x), T.sum(x)) },
    { name: 'axis 1 of a permuted view', inputs: () => [any([2, 3, 4])], f: (x) => wsum(T.sum(T.permute(x, [1, 2, 0]), 1)) },
    { name: 'axes [0,2] keepdims', inputs: () => [any([2, 3, 4])], f: (x) => wsum(T.sum(x, [0, 2], true)) },
  ],
  max: [
    { name: 'axis 1', inputs: () => [any([3, 5])], f: (x) => wsum(T.max(x, 1)) },
    {
      name: 'all axes of a sliced view',
      inputs: () => [any([4, 6])],
      f: (x) =>
        T.max(
          T.slice(x, [
            [0, 4, 2],
            [1, 6],
          ]),
        ),
    },
    { name: 'axes [0,2] keepdims', inputs: () => [any([2, 3, 4])], f: (x) => wsum(T.max(x, [0, 2], true)) },
  ],
  min: [
    { name: 'axis 0', inputs: () => [any([3, 5])], f: (x) => wsum(T.min(x, 0)) },
    {
      name: 'axis -1 keepdims of a permuted view',
      inputs: () => [any([2, 3, 4])],
      f: (x) => wsum(T.min(T.permute(x, [2, 0, 1]), -1, true)),
    },
  ],
  argmax: [
    zeroCase(
      'argmax',
      () => [any([3, 5])],
      (x) => wsum(T.cast(T.argmax(x, 1), 'float64')),
    ),
  ],

  matmul: [
    { name: '[3,4] @ [4,5]', inputs: () => [any([3, 4]), any([4, 5])], f: (a, b) => wsum(T.matmul(a, b)) },
    { name: '[2,3,4] @ [4,5] (shared weight)', inputs: () => [any([2, 3, 4]), any([4, 5])], f: (a, b) => wsum(T.matmul(a, b)) },
    { name: '[3,4] @ [2,4,5] (broadcast left)', inputs: () => [any([3, 4]), any([2, 4, 5])], f: (a, b) => wsum(T.matmul(a, b)) },
    { name: '[2,1,3,4] @ [3,4,2] (broadcast batch)', inputs: () => [any([2, 1, 3, 4]), any([3, 4, 2])], f: (a, b) => wsum(T.matmul(a, b)) },
    { name: 'transposed operands', inputs: () => [any([4, 3]), any([5, 4])], f: (a, b) => wsum(T.matmul(T.transpose(a), T.transpose(b))) },
    { name: '1-D @ 2-D', inputs: () => [any([4]), any([4, 5])], f: (a, b) => wsum(T.matmul(a, b)) },
    { name: '3-D @ 1-D', inputs: () => [any([2, 3, 4]), any([4])], f: (a, b) => wsum(T.matmul(a, b)) },
    { name: '1-D @ 1-D', inputs: () => [any([4]), any([4])], f: (a, b) => T.mul(T.matmul(a, b), T.matmul(a, b)) },
  ],
  cumsum: [
    { name: 'axis 1', inputs: () => [any([3, 5])], f: (x) => wsum(T.cumsum(x, 1)) },
    { name: 'axis 0 reverse', inputs: () => [any([4, 3])], f: (x) => wsum(T.cumsum(x, 0, { reverse: true })) },
    { name: 'permuted view', inputs: () => [any([2, 3, 4])], f: (x) => wsum(T.cumsum(T.permute(x, [2, 1, 0]), -1)) },
  ],
  softmax: [
    { name: 'last axis', inputs: () => [any([3, 5])], f: (x) => wsum(T.softmax(x, -1)) },
    { name: 'axis 0', inputs: () => [any([4, 3])], f: (x) => wsum(T.softmax(x, 0)) },
    { name: 'middle axis of a permuted view', inputs: () => [any([2, 3, 4])], f: (x) => wsum(T.softmax(T.permute(x, [2, 0, 1]), 1)) },
    {
      name: 'strided slice, large logits',
      inputs: () => [rnd([5, 8], -30, 30)],
      f: (x) =>
        wsum(
          T.softmax(
            T.slice(x, [
              [0, 5, 2],
              [1, 8, 2],
            ]),
            -1,
          ),
        ),
    },
  ],
  take: [
    { name: 'rows with repeats (embedding)', inputs: () => [any([5, 3])], f: (x) => wsum(T.take(x, i32([4, 0, 4, 2, 4, 1], [2, 3]), 0)) },
    {
      name: 'axis 1 of a permuted view',
      inputs: () => [any([3, 4, 2])],
      f: (x) => wsum(T.take(T.permute(x, [0, 2, 1]), i32([3, 3, 0], [3]), 2)),
    },
  ],
  takeAdjoint: [
    {
      name: 'scatter-add with repeats',
      inputs: () => [any([2, 3, 4])],
      f: (src) => wsum(T.mul(T.takeAdjoint(src, i32([1, 1, 3], [3]), 1, [2, 5, 4]), 1.5)),
    },
  ],
  concat: [
    {
      name: 'three inputs along axis 1, one transposed',
      inputs: () => [any([3, 2]), any([1, 3]), any([3, 4])],
      f: (a, b, c) => wsum(T.concat([a, T.transpose(b), c], 1)),
    },
    { name: 'stack (reshape + concat)', inputs: () => [any([2, 3]), any([2, 3])], f: (a, b) => wsum(T.stack([a, b], 1)) },
  ],
  reshape: [
    { name: 'contiguous', inputs: () => [any([3, 4])], f: (x) => wsum(T.reshape(x, [2, 6])) },
    { name: 'of a permuted view (copies)', inputs: () => [any([3, 4])], f: (x) => wsum(T.reshape(T.transpose(x), [2, -1])) },
    { name: 'squeeze / unsqueeze', inputs: () => [any([3, 1, 4])], f: (x) => wsum(T.unsqueeze(T.squeeze(x, 1), 0)) },
  ],
  permute: [{ name: '3-D', inputs: () => [any([2, 3, 4])], f: (x) => wsum(T.mul(T.permute(x, [2, 0, 1]), T.permute(x, [2, 0, 1]))) }],
  expand: [
    { name: '[3,1] → [2,3,4]', inputs: () => [any([3, 1])], f: (x) => wsum(T.expand(x, [2, 3, 4])) },
    { name: 'of a sliced view', inputs: () => [any([4, 1])], f: (x) => wsum(T.expand(T.slice(x, [[1, 4]]), [3, 3, 5])) },
  ],
  slice: [
    {
      name: 'start/stop on two axes',
      inputs: () => [any([5, 6])],
      f: (x) =>
        wsum(
          T.slice(x, [
            [1, 4],
            [2, -1],
          ]),
        ),
    },
    {
      name: 'steps 2 and 3',
      inputs: () => [any([5, 7])],
      f: (x) =>
        wsum(
          T.slice(x, [
            [0, 5, 2],
            [1, 7, 3],
          ]),
        ),
    },
    { name: 'integer index drops an axis', inputs: () => [any([3, 4, 2])], f: (x) => wsum(T.slice(x, [1, [1, 3]])) },
    {
      name: 'slice of a permuted view',
      inputs: () => [any([4, 5])],
      f: (x) =>
        wsum(
          T.slice(T.transpose(x), [
            [1, 5, 2],
            [0, 3],
          ]),
        ),
    },
    { name: 'overlapping slices accumulate', inputs: () => [any([6])], f: (x) => wsum(T.mul(T.slice(x, [[0, 4]]), T.slice(x, [[2, 6]]))) },
  ],
  contiguous: [{ name: 'of a permuted view', inputs: () => [any([3, 4])], f: (x) => wsum(T.contiguous(T.transpose(x))) }],
};

/** The primitives `f` reports to a recorder. */
function primsOf(c: Case): Set<string> {
  const seen = new Set<string>();
  tidy(() => {
    const xs = c.inputs();
    const prev = setRecorder((r) => seen.add(r.prim));
    try {
      c.f(...xs);
    } finally {
      setRecorder(prev);
    }
  });
  return seen;
}

describe('VJP rules: one per primitive', () => {
  it('the rule table and the cases cover the same primitives', () => {
    expect(Object.keys(cases).sort()).toEqual(Object.keys(rules).sort());
  });

  for (const [prim, list] of Object.entries(cases) as [Prim, Case[]][]) {
    for (const c of list) {
      it(`${prim}: ${c.name}`, () => {
        reseed(prim.length * 1000 + c.name.length);
        expect(primsOf(c)).toContain(prim);
        const inputs = c.inputs();
        if (c.zero) {
          const { value, grads } = valueAndGrad((xs: Tensor[]) => c.f(...xs))(inputs);
          expect(Number.isFinite(value.itemSync())).toBe(true);
          grads.forEach((g, i) => {
            expect(g.shape).toEqual(inputs[i].shape);
            expect(Array.from(g.dataSync()).every((v) => v === 0)).toBe(true);
          });
        } else {
          const report = gradcheck(c.f, inputs);
          expect(report.ok).toBe(true);
        }
        T.dispose(inputs);
      });
    }
  }
});

describe('rules that would be ambiguous at ties or kinks', () => {
  it('max/min share the gradient equally among tied extrema', () => {
    const x = T.tensor(
      [
        [1, 3, 3],
        [2, 0, 2],
      ],
      [2, 3],
      { dtype: 'float64' },
    );
    const { grads } = valueAndGrad((p: Tensor) => T.sum(T.max(p, 1)))(x);
    expect(grads.toArraySync()).toEqual([
      [0, 0.5, 0.5],
      [0.5, 0, 0.5],
    ]);
    const { grads: gmin } = valueAndGrad((p: Tensor) => T.sum(T.mul(T.min(p), 4)))(x);
    expect(gmin.toArraySync()).toEqual([
      [0, 0, 0],
      [0, 4, 0],
    ]);
  });

  it('maximum/minimum split the gradient half/half on ties', () => {
    const a = T.tensor([1, 2, 3], [3], { dtype: 'float64' });
    const b = T.tensor([1, 5, 0], [3], { dtype: 'float64' });
    const { grads } = valueAndGrad((p: Tensor[]) => T.sum(T.maximum(p[0], p[1])))([a, b]);
    expect(grads[0].toArraySync()).toEqual([0.5, 0, 1]);
    expect(grads[1].toArraySync()).toEqual([0.5, 1, 0]);
    const { grads: gm } = valueAndGrad((p: Tensor[]) => T.sum(T.minimum(p[0], p[1])))([a, b]);
    expect(gm[0].toArraySync()).toEqual([0.5, 1, 0]);
    expect(gm[1].toArraySync()).toEqual([0.5, 0, 1]);
  });

  it('relu and abs have gradient 0 at 0; pow gives no base-log gradient where the base is ≤ 0', () => {
    const x = T.tensor([-1, 0, 2], [3], { dtype: 'float64' });
    expect(valueAndGrad((p: Tensor) => T.sum(T.relu(p)))(x).grads.toArraySync()).toEqual([0, 0, 1]);
    expect(valueAndGrad((p: Tensor) => T.sum(T.abs(p)))(x).grads.toArraySync()).toEqual([-1, 0, 1]);
    const base = T.tensor([-2, 0, 2], [3], { dtype: 'float64' });
    const expo = T.tensor([2, 2, 3], [3], { dtype: 'float64' });
    const { grads } = valueAndGrad((p: Tensor[]) => T.sum(T.pow(p[0], p[1])))([base, expo]);
    // d/da a^b = b·a^(b−1): [2·(−2), 2·0, 3·4]; d/db = a^b·log a where a > 0: [0, 0, 8·ln 2]
    expect(grads[0].toArraySync()).toEqual([-4, 0, 12]);
    const db = grads[1].dataSync();
    expect([db[0], db[1]]).toEqual([0, 0]);
    expect(db[2]).toBeCloseTo(8 * Math.log(2), 12);
  });

  it('cumsum: the gradient of Σ w·cumsum(x) is the reverse cumsum of w', () => {
    const x = T.tensor([1, 2, 3, 4], [4], { dtype: 'float64' });
    const w = T.tensor([1, 10, 100, 1000], [4], { dtype: 'float64' });
    expect(valueAndGrad((p: Tensor) => T.sum(T.mul(T.cumsum(p), w)))(x).grads.toArraySync()).toEqual([1111, 1110, 1100, 1000]);
    expect(valueAndGrad((p: Tensor) => T.sum(T.mul(T.cumsum(p, 0, { reverse: true }), w)))(x).grads.toArraySync()).toEqual([
      1, 11, 111, 1111,
    ]);
  });

  it('take: repeated indices accumulate; the index gets no gradient', () => {
    const x = T.tensor(
      [
        [1, 2],
        [3, 4],
        [5, 6],
      ],
      [3, 2],
      { dtype: 'float64' },
    );
    const idx = i32([2, 0, 2], [3]);
    const { grads } = valueAndGrad((p: Tensor) => T.sum(T.take(p, idx, 0)))(x);
    expect(grads.toArraySync()).toEqual([
      [1, 1],
      [0, 0],
      [2, 2],
    ]);
  });
});
