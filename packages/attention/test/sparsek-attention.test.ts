import { gradcheck, valueAndGrad } from '@foxgate/autograd';
import { memoryStats, mul, sum, type Tensor, tensor } from '@foxgate/tensor';
import { throwsNaming } from '@foxgate/testing';
import { describe, expect, it } from 'vitest';
import { type SparsekAttentionOptions, type SparsekGate, sparsekAttention } from '../src/sparsek/attention.js';
import { sparsek } from '../src/sparsek/op.js';
import { normals } from './util/sparsek-data.js';

/**
 * SPARSEK attention on the CPU: the fused kernel against the dense reference (output and the
 * gradients of q, k, v, u) for every gate, windows and budgets; hand-built cases (k ≥ T and
 * window ≥ T: plain causal attention; a hard top-1 selection); finite differences in float64 of
 * both; the error messages.
 */

interface Problem {
  q: Tensor;
  k: Tensor;
  v: Tensor;
  u: Tensor;
  w: Tensor;
}

function problem(B: number, T: number, H: number, D: number, seed: number, uScale = 1, dtype: 'float32' | 'float64' = 'float64'): Problem {
  const f = (n: number, s: number, shape: number[], scale = 1) => {
    const a = normals(n, s, scale);
    return tensor(dtype === 'float64' ? a : Float32Array.from(a), shape, { dtype });
  };
  const n = B * T * H * D;
  return {
    q: f(n, seed, [B, T, H, D]),
    k: f(n, seed + 1, [B, T, H, D]),
    v: f(n, seed + 2, [B, T, H, D]),
    u: f(B * T * H, seed + 3, [B, T, H], uScale),
    w: f(n, seed + 4, [B, T, H, D]),
  };
}

function run(p: Problem, opts: SparsekAttentionOptions) {
  const { value, aux, grads } = valueAndGrad((x: { q: Tensor; k: Tensor; v: Tensor; u: Tensor }) => {
    const o = sparsekAttention(x.q, x.k, x.v, x.u, opts);
    return { loss: sum(mul(o, p.w)), aux: o };
  })({ q: p.q, k: p.k, v: p.v, u: p.u });
  const d = (t: Tensor) => {
    const a = Float64Array.from(t.dataSync());
    t.dispose();
    return a;
  };
  value.dispose();
  return { o: d(aux), dq: d(grads.q), dk: d(grads.k), dv: d(grads.v), du: d(grads.u) };
}

function expectClose(a: Float64Array, b: Float64Array, atol: number, rtol: number, what: string): void {
  expect(a.length).toBe(b.length);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i] - b[i]) - (atol + rtol * Math.abs(b[i]));
    if (!(e <= worst)) {
      worst = e;
      at = i;
    }
  }
  expect(at, `${what}: element ${at} got ${a[at]} expected ${b[at]}`).toBe(-1);
}

/** Plain causal softmax attention in float64 loops (`o [B,T,H,D]`). */
function causal(p: Problem, scale: number): Float64Array {
  const [B, T, H, D] = p.q.shape;
  const q = p.q.dataSync();
  const k = p.k.dataSync();
  const v = p.v.dataSync();
  const o = new Float64Array(B * T * H * D);
  const at = (b: number, t: number, h: number) => ((b * T + t) * H + h) * D;
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let i = 0; i < T; i++) {
        const s = [];
        for (let j = 0; j <= i; j++) {
          let d = 0;
          for (let x = 0; x < D; x++) d += q[at(b, i, h) + x] * k[at(b, j, h) + x];
          s.push(scale * d);
        }
        const mx = Math.max(...s);
        const e = s.map((x) => Math.exp(x - mx));
        const z = e.reduce((x, y) => x + y, 0);
        for (let j = 0; j <= i; j++) for (let x = 0; x < D; x++) o[at(b, i, h) + x] += (e[j] / z) * v[at(b, j, h) + x];
      }
  return o;
}

const gates: SparsekGate[] = ['kv', 'v', 'logit'];

describe('fused CPU kernel = dense reference (float64, all gradients)', () => {
  const settings: [number, number, number, number, number, number][] = [
    // B, T, H, D, k, window
    [1, 9, 1, 3, 2, 2],
    [2, 17, 2, 4, 3, 4],
    [1, 13, 2, 5, 2.5, 1],
    [1, 11, 1, 2, 1, 0],
    [2, 10, 1, 3, 4, 3],
  ];
  for (const gate of gates) {
    for (const [B, T, H, D, k, window] of settings) {
      it(`gate=${gate} B=${B} T=${T} H=${H} D=${D} k=${k} window=${window}`, () => {
        const p = problem(B, T, H, D, B * 100 + T + window, 0.7);
        const opts = { k, window, gate, scale: 0.6 };
        const fused = run(p, { ...opts, impl: 'fused' });
        const ref = run(p, { ...opts, impl: 'reference' });
        for (const key of ['o', 'dq', 'dk', 'dv', 'du'] as const) expectClose(fused[key], ref[key], 1e-10, 1e-9, key);
        // the scores get a gradient (some gate is fractional)
        expect(fused.du.some((x) => Math.abs(x) > 1e-6)).toBe(true);
      });
    }
  }

  it('float32 fused kernel vs float64 reference', () => {
    const p64 = problem(2, 15, 2, 6, 7, 1);
    const p32 = problem(2, 15, 2, 6, 7, 1, 'float32');
    const opts = { k: 3, window: 3 };
    const a = run(p32, opts);
    const b = run(p64, { ...opts, impl: 'reference' });
    for (const key of ['o', 'dq', 'dk', 'dv', 'du'] as const) expectClose(a[key], b[key], 1e-5, 1e-4, key);
  });
});

describe('hand-built cases', () => {
  for (const gate of gates) {
    it(`k ≥ T or window ≥ T gives plain causal attention (${gate})`, () => {
      const p = problem(1, 8, 2, 3, 5);
      const want = causal(p, 0.5);
      for (const impl of ['fused', 'reference'] as const) {
        expectClose(run(p, { k: 8, window: 2, gate, scale: 0.5, impl }).o, want, 1e-12, 1e-12, `k=T ${impl}`);
        expectClose(run(p, { k: 1, window: 8, gate, scale: 0.5, impl }).o, want, 1e-12, 1e-12, `window=T ${impl}`);
      }
    });
  }

  it('a hard top-1 selection (gaps ≥ 1): window 1 plus the best older position, u gets no gradient', () => {
    const T = 7;
    const uVals = [0, 5, 1.5, -3, 9, 2, 4]; // running best of the prefix: 0, 5, 5, 5, 9, 9
    const base = problem(1, T, 1, 2, 11);
    const p = { ...base, u: tensor(Float64Array.from(uVals), [1, T, 1], { dtype: 'float64' }) };
    const q = p.q.dataSync();
    const k = p.k.dataSync();
    const v = p.v.dataSync();
    const want = new Float64Array(T * 2);
    for (let i = 0; i < T; i++) {
      const js = [i];
      if (i >= 1) {
        let best = 0;
        for (let j = 1; j <= i - 1; j++) if (uVals[j] > uVals[best]) best = j;
        js.push(best);
      }
      const s = js.map((j) => q[2 * i] * k[2 * j] + q[2 * i + 1] * k[2 * j + 1]);
      const mx = Math.max(...s);
      const e = s.map((x) => Math.exp(x - mx));
      const z = e.reduce((x, y) => x + y, 0);
      js.forEach((j, c) => {
        want[2 * i] += (e[c] / z) * v[2 * j];
        want[2 * i + 1] += (e[c] / z) * v[2 * j + 1];
      });
    }
    for (const gate of gates) {
      for (const impl of ['fused', 'reference'] as const) {
        const r = run(p, { k: 1, window: 1, gate, scale: 1, impl });
        expectClose(r.o, want, 1e-12, 1e-12, `${gate} ${impl}`);
        for (const x of r.du) expect(Math.abs(x)).toBeLessThan(1e-14);
      }
    }
  });
});

describe('gradcheck (float64)', () => {
  for (const gate of gates) {
    for (const impl of ['fused', 'reference'] as const) {
      it(`${gate} (${impl})`, () => {
        // the reference runs 110 bisection passes per evaluation: a smaller problem for it
        const p = impl === 'fused' ? problem(1, 7, 2, 2, 31, 0.4) : problem(1, 6, 1, 2, 31, 0.4);
        const f = (q: Tensor, k: Tensor, v: Tensor, u: Tensor) =>
          sum(mul(sparsekAttention(q, k, v, u, { k: 2, window: 2, gate, scale: 0.9, impl }), p.w));
        const report = gradcheck(f, [p.q, p.k, p.v, p.u], { eps: 1e-6, atol: 1e-7, rtol: 1e-5, raise: false });
        expect(report.ok, report.message).toBe(true);
      });
    }
  }
});

describe('errors', () => {
  const p = problem(1, 4, 2, 3, 1);
  const ok = { k: 2, window: 1 };
  const cases: [string, () => unknown, RegExp][] = [
    ['k = 0', () => sparsekAttention(p.q, p.k, p.v, p.u, { ...ok, k: 0 }), /^sparsekAttention: opts.k must be a finite number > 0, got 0$/],
    [
      'k missing',
      () => sparsekAttention(p.q, p.k, p.v, p.u, { window: 1 } as SparsekAttentionOptions),
      /opts.k must be a finite number > 0, got undefined/,
    ],
    [
      'window < 0',
      () => sparsekAttention(p.q, p.k, p.v, p.u, { ...ok, window: -1 }),
      /^sparsekAttention: opts.window must be an integer ≥ 0, got -1$/,
    ],
    ['window 1.5', () => sparsekAttention(p.q, p.k, p.v, p.u, { ...ok, window: 1.5 }), /opts.window must be an integer ≥ 0, got 1.5/],
    [
      'u of the wrong shape',
      () => sparsekAttention(p.q, p.k, p.v, tensor(new Float64Array(8), [1, 2, 4], { dtype: 'float64' }), ok),
      /^sparsekAttention: u must have shape \[B,T,H\] = \[1,4,2\] for q \[1,4,2,3\], got \[1,2,4\]$/,
    ],
    [
      'gate',
      () => sparsekAttention(p.q, p.k, p.v, p.u, { ...ok, gate: 'q' as SparsekGate }),
      /^sparsekAttention: opts.gate must be 'kv', 'v' or 'logit', got "q"$/,
    ],
    [
      'k shape',
      () => sparsekAttention(p.q, p.q.reshape([1, 4, 6, 1]), p.v, p.u, ok),
      /^sparsekAttention: k \[1,4,6,1\] must have the shape of q \[1,4,2,3\]/,
    ],
    [
      'dtype',
      () => sparsekAttention(p.q, p.k, p.v, tensor(new Float32Array(8), [1, 4, 2]), ok),
      /^sparsekAttention: u has dtype float32 but q has float64/,
    ],
    [
      'impl',
      () => sparsekAttention(p.q, p.k, p.v, p.u, { ...ok, impl: 'x' as 'fused' }),
      /^sparsekAttention: opts.impl must be 'fused' or 'reference'/,
    ],
  ];
  for (const [name, fn, re] of cases) {
    it(name, () => {
      throwsNaming(fn, re);
    });
  }
});

describe('memory', () => {
  it('sparsek and sparsekAttention, forward and backward, leave no live tensors behind (cpu)', () => {
    const count = () => memoryStats().backends.cpu?.tensors ?? 0;
    const p = problem(1, 9, 2, 3, 41);
    const before = count();
    for (const impl of ['fused', 'reference'] as const) {
      sparsekAttention(p.q, p.k, p.v, p.u, { k: 2, window: 2, impl }).dispose();
      const r = run(p, { k: 2, window: 2, impl });
      expect(r.o.length).toBe(54);
      const { value, grads } = valueAndGrad((x: Tensor) => sum(mul(sparsek(x, 2, { impl }), p.u)))(p.u);
      for (const x of [sparsek(p.u, 3, { impl }), value, grads]) x.dispose();
    }
    expect(count()).toBe(before);
  });
});
