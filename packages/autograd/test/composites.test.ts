import type { Tensor } from '@foxgate/tensor';
import * as T from '@foxgate/tensor';
import { describe, expect, it } from 'vitest';
import { gradcheck, valueAndGrad } from '../src/index.js';
import { maxDiff, reseed, rnd, wsum } from './util.js';

const labels = (data: number[], shape: number[]) => T.tensor(data, shape, { dtype: 'int32' });

describe('composite ops pass gradcheck (float64, finite differences)', () => {
  const cases: [string, () => Tensor[], (...xs: Tensor[]) => Tensor][] = [
    ['softmax, last axis', () => [rnd([3, 5])], (x) => wsum(T.softmax(x))],
    ['softmax, axis 0 of a permuted view', () => [rnd([2, 4, 3])], (x) => wsum(T.softmax(T.permute(x, [2, 0, 1]), 0))],
    ['logSoftmax', () => [rnd([4, 6], -4, 4)], (x) => wsum(T.logSoftmax(x))],
    [
      'logSoftmax of a sliced view',
      () => [rnd([5, 8])],
      (x) =>
        wsum(
          T.logSoftmax(
            T.slice(x, [
              [0, 5, 2],
              [1, 7],
            ]),
            -1,
          ),
        ),
    ],
    ['logsumexp', () => [rnd([3, 4])], (x) => wsum(T.logsumexp(x, 1))],
    ['logsumexp keepdims of an expanded view', () => [rnd([3, 1])], (x) => wsum(T.logsumexp(T.expand(x, [2, 3, 4]), 1, true))],
    ['crossEntropy mean', () => [rnd([4, 5], -3, 3), labels([0, 4, 2, 2], [4])], (x, y) => T.crossEntropy(x, y)],
    [
      'crossEntropy with ignored labels (−100)',
      () => [rnd([2, 3, 5], -3, 3), labels([1, -100, 4, 0, -100, 3], [2, 3])],
      (x, y) => T.crossEntropy(x, y),
    ],
    [
      'crossEntropy custom ignoreIndex, reduction sum',
      () => [rnd([4, 5]), labels([1, 3, 3, 0], [4])],
      (x, y) => T.crossEntropy(x, y, { ignoreIndex: 3, reduction: 'sum' }),
    ],
    [
      'crossEntropy reduction none',
      () => [rnd([3, 4]), labels([3, 0, 1], [3])],
      (x, y) => wsum(T.crossEntropy(x, y, { reduction: 'none' })),
    ],
    ['crossEntropy on transposed logits', () => [rnd([5, 3]), labels([1, 4, 0], [3])], (x, y) => T.crossEntropy(T.transpose(x), y)],
    ['rmsNorm without weight', () => [rnd([3, 6])], (x) => wsum(T.rmsNorm(x))],
    ['rmsNorm with weight (both differentiated)', () => [rnd([2, 3, 4]), rnd([4])], (x, w) => wsum(T.rmsNorm(x, w, 1e-5))],
    ['rmsNorm of a permuted view', () => [rnd([4, 3]), rnd([4])], (x, w) => wsum(T.rmsNorm(T.transpose(x), w))],
    ['mean, all axes', () => [rnd([3, 4])], (x) => T.mul(T.mean(x), T.mean(x))],
    ['mean over axes [0,2] keepdims', () => [rnd([2, 3, 4])], (x) => wsum(T.mean(x, [0, 2], true))],
    ['variance, population', () => [rnd([3, 5])], (x) => wsum(T.variance(x, 1))],
    [
      'variance, sample, all axes of a sliced view',
      () => [rnd([4, 6])],
      (x) =>
        T.variance(
          T.slice(x, [
            [1, 4],
            [0, 6, 2],
          ]),
          undefined,
          { correction: 1 },
        ),
    ],
  ];
  for (const [name, inputs, f] of cases) {
    it(name, () => {
      reseed(name.length);
      const xs = inputs();
      expect(gradcheck(f, xs).ok).toBe(true);
      T.dispose(xs);
    });
  }
});

describe('composite gradients against closed forms', () => {
  it('d Σ w·softmax(x) = s ∘ (w − s·w)', () => {
    reseed(7);
    const x = rnd([2, 4]);
    const w = rnd([2, 4]);
    const { grads } = valueAndGrad((p: Tensor) => T.sum(T.mul(T.softmax(p), w)))(x);
    const xs = x.dataSync();
    const ws = w.dataSync();
    const expected: number[] = [];
    for (let r = 0; r < 2; r++) {
      const row = Array.from(xs.slice(r * 4, r * 4 + 4));
      const m = Math.max(...row);
      const e = row.map((v) => Math.exp(v - m));
      const z = e.reduce((a, b) => a + b, 0);
      const s = e.map((v) => v / z);
      const sw = s.reduce((a, v, i) => a + v * ws[r * 4 + i], 0);
      for (let i = 0; i < 4; i++) expected.push(s[i] * (ws[r * 4 + i] - sw));
    }
    expect(maxDiff(grads.dataSync(), expected)).toBeLessThan(1e-14);
  });

  it('d crossEntropy / d logits = (softmax − onehot) / (non-ignored count), zero rows for ignored labels', () => {
    const x = T.tensor(
      [
        [1, 2, 3],
        [0, 0, 0],
        [3, -1, 2],
      ],
      [3, 3],
      { dtype: 'float64' },
    );
    const y = labels([2, -100, 0], [3]);
    const { value, grads } = valueAndGrad((p: Tensor) => T.crossEntropy(p, y))(x);
    const rows = [
      [1, 2, 3],
      [0, 0, 0],
      [3, -1, 2],
    ];
    const sm = rows.map((r) => {
      const e = r.map(Math.exp);
      const z = e.reduce((a, b) => a + b, 0);
      return e.map((v) => v / z);
    });
    const expected = [
      [sm[0][0] / 2, sm[0][1] / 2, (sm[0][2] - 1) / 2],
      [0, 0, 0],
      [(sm[2][0] - 1) / 2, sm[2][1] / 2, sm[2][2] / 2],
    ].flat();
    expect(maxDiff(grads.dataSync(), expected)).toBeLessThan(1e-15);
    expect(value.itemSync()).toBeCloseTo((-Math.log(sm[0][2]) - Math.log(sm[2][0])) / 2, 14);
  });

  it('float32 gradients of the composites agree with float64 ones', () => {
    reseed(3);
    const x64 = rnd([4, 6]);
    const w64 = rnd([6]);
    const y = labels([5, 0, 3, 3], [4]);
    const loss = (p: Tensor[]) => T.add(T.crossEntropy(T.rmsNorm(p[0], p[1]), y), T.mean(T.variance(p[0], 1)));
    const g64 = valueAndGrad(loss)([x64, w64]).grads;
    const g32 = valueAndGrad(loss)([T.cast(x64, 'float32'), T.cast(w64, 'float32')]).grads;
    expect(g32[0].dtype).toBe('float32');
    expect(maxDiff(g32[0].dataSync(), g64[0].dataSync())).toBeLessThan(1e-5);
    expect(maxDiff(g32[1].dataSync(), g64[1].dataSync())).toBeLessThan(1e-5);
  });
});
