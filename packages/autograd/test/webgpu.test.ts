import type { Backend, Tensor } from '@foxgate/tensor';
import * as T from '@foxgate/tensor';
import { destroyTestWebGPU, testWebGPU } from '@foxgate/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { customOp, valueAndGrad } from '../src/index.js';
import { lcg, maxDiff } from './util.js';

const gpu = (await testWebGPU()) as Backend | null; // null (with a skip line) without an adapter
afterAll(destroyTestWebGPU);

/** float32 inputs with the same values on any backend. */
function inputsOn(backend: Backend | string, shapes: number[][], seed: number, lo = -2, hi = 2): Tensor[] {
  const gen = lcg(seed);
  return shapes.map((s) => {
    const data = new Float32Array(s.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = lo + (hi - lo) * gen();
    return T.tensor(data, s, { backend });
  });
}

/** Σ y·w with fixed weights, on y's backend. */
function wsum(y: Tensor): Tensor {
  const gen = lcg(5);
  const w = new Float32Array(y.size);
  for (let i = 0; i < w.length; i++) w[i] = gen() * 2 - 1;
  return T.sum(T.mul(y, T.tensor(w, [...y.shape], { backend: y.backend })));
}

const softmaxOp = customOp({
  name: 'softmaxOp',
  forward: ([x]) => {
    const s = T.softmax(x);
    return { outputs: [s], saved: [s] };
  },
  backward: ([g], [s]) => [T.mul(s, T.sub(g as Tensor, T.sum(T.mul(g as Tensor, s), -1, true)))],
  saveInputs: false,
  saveOutputs: false,
});

const idx = (b: Backend | string, data: number[]) => T.tensor(data, [data.length], { dtype: 'int32', backend: b });

const cases: [string, number[][], (b: Backend | string, ...xs: Tensor[]) => Tensor, [number, number]?][] = [
  ['unary chain', [[3, 4]], (_b, x) => wsum(T.silu(T.tanh(T.sigmoid(T.exp(T.sin(T.logsigmoid(x))))))), undefined],
  [
    'log / sqrt / rsqrt / log1p / abs / relu',
    [[3, 4]],
    (_b, x) => wsum(T.add(T.add(T.log(x), T.sqrt(x)), T.add(T.add(T.rsqrt(x), T.log1p(x)), T.relu(T.abs(T.neg(x)))))),
    [0.3, 2],
  ],
  [
    'broadcast binary ops',
    [
      [3, 1, 4],
      [2, 4],
    ],
    (_b, a, c) => wsum(T.sub(T.div(T.mul(a, c), T.add(T.mul(c, c), 1)), T.maximum(a, T.minimum(c, 0.5)))),
    undefined,
  ],
  ['pow (both args)', [[2, 3], [3]], (_b, a, c) => wsum(T.pow(a, c)), [0.5, 1.5]],
  [
    'where, cast, cumsum',
    [[4, 5]],
    (_b, x) => wsum(T.cumsum(T.where(T.gt(x, 0), T.mul(x, 2), T.cast(T.cast(x, 'float32'), 'float32')), 1, { reverse: true })),
    undefined,
  ],
  [
    'sum / max / min reductions',
    [[3, 4, 5]],
    (_b, x) => T.add(wsum(T.max(x, [0, 2])), T.add(wsum(T.min(x, 1, true)), wsum(T.sum(x, 2)))),
    undefined,
  ],
  [
    'matmul with broadcast batch, transposes and 1-D',
    [[2, 1, 3, 4], [3, 5, 4], [5]],
    (_b, a, c, v) => wsum(T.matmul(T.matmul(a, T.transpose(c)), v)),
    undefined,
  ],
  [
    'take / takeAdjoint / concat / slice / expand / permute',
    [
      [5, 3],
      [2, 3],
    ],
    (b, x, y) => {
      const t = T.take(x, idx(b, [4, 0, 4, 2]), 0); // [4,3]
      const s = T.takeAdjoint(
        T.slice(T.permute(T.concat([t, T.expand(T.slice(y, [[0, 1]]), [2, 3])], 0), [1, 0]), [
          [0, 3],
          [0, 6, 2],
        ]),
        idx(b, [1, 1, 0]),
        1,
        [3, 2],
      );
      return wsum(s);
    },
    undefined,
  ],
  [
    'softmax / logSoftmax / crossEntropy / rmsNorm / variance',
    [[4, 6], [6]],
    (b, x, w) => {
      const labels = T.tensor([5, -100, 0, 3], [4], { dtype: 'int32', backend: b });
      const n = T.rmsNorm(x, w);
      return T.add(
        T.add(T.crossEntropy(n, labels), wsum(T.logSoftmax(T.transpose(x), 0))),
        T.add(wsum(T.softmax(x)), T.mean(T.variance(x, 1))),
      );
    },
    undefined,
  ],
  ['custom op', [[3, 5]], (_b, x) => wsum(softmaxOp([x])[0]), undefined],
];

describe.skipIf(!gpu)('WebGPU gradients agree with the CPU (float32)', () => {
  for (const [name, shapes, f, range] of cases) {
    it(name, async () => {
      const run = async (b: Backend | string) => {
        const xs = inputsOn(b, shapes, name.length, ...(range ?? [-2, 2]));
        const { value, grads } = valueAndGrad((ps: Tensor[]) => f(b, ...ps))(xs);
        const out = { value: await value.item(), grads: await Promise.all(grads.map(async (g) => Array.from(await g.data()))) };
        T.dispose([xs, value, grads]);
        return out;
      };
      const cpu = await run('cpu');
      const gpuRes = await run(gpu as Backend);
      expect(Math.abs(gpuRes.value - cpu.value)).toBeLessThan(1e-4 * (1 + Math.abs(cpu.value)));
      cpu.grads.forEach((g, i) => {
        const scale = 1 + Math.max(...g.map(Math.abs));
        expect(maxDiff(gpuRes.grads[i], g) / scale).toBeLessThan(1e-4);
      });
    });
  }
});
