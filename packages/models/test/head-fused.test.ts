import { customOp, gradcheck, valueAndGrad } from '@foxgate/autograd';
import {
  add,
  type Backend,
  concat,
  dispose,
  matmul,
  memoryStats,
  mul,
  narrow,
  neg,
  reshape,
  rsqrt,
  sigmoid,
  sub,
  sum,
  type Tensor,
  tensor,
  transpose,
  unsqueeze,
  zeros,
} from '@foxgate/tensor';
import { destroyTestWebGPU, testWebGPU } from '@foxgate/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { headFused } from '../src/layers/head-fused.js';
import { attentionOutput } from '../src/layers/out-proj-fused.js';
import { ropeTableTensors } from '../src/layers/rope.js';
import { maxDiff, values, wsum } from './util.js';

const gpu = (await testWebGPU()) as unknown as Backend | null;
afterAll(destroyTestWebGPU);

/** Which steps a case runs. */
interface Case {
  shift?: boolean;
  keep?: boolean;
  prev?: boolean;
  norm?: 'head' | 'shared';
  rope?: boolean;
  gate?: boolean;
}

interface Inputs {
  x: Tensor;
  alpha?: Tensor;
  keep?: Tensor;
  prev?: Tensor;
  w?: Tensor;
  cos?: Tensor;
  sin?: Tensor;
  z?: Tensor;
}

const EPS = 1e-5;

/** The inputs of a case on `backend` in `dtype`, from fixed pseudo-random values. */
function inputsOf(c: Case, [B, T, H, D]: number[], dtype: 'float32' | 'float64', backend: string | Backend): Inputs {
  const mk = (shape: number[], seed: number, lo = -2, hi = 2) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const v = values(n, seed, lo, hi);
    return tensor(dtype === 'float64' ? Float64Array.from(v) : Float32Array.from(v), shape, { dtype, backend });
  };
  const r: Inputs = { x: mk([B, T, H, D], 1) };
  if (c.shift) r.alpha = mk([B, T, H], 2, -3, 3); // the logits of α
  if (c.keep) {
    const k = values(B * T, 3, 0, 1).map((v) => (v < 0.3 ? 0 : 1));
    r.keep = tensor(dtype === 'float64' ? Float64Array.from(k) : Float32Array.from(k), [B, T], { dtype, backend });
  }
  if (c.prev) r.prev = mk([B, H * D], 4);
  if (c.norm) r.w = mk(c.norm === 'head' ? [H * D] : [D], 5, 0.5, 1.5);
  if (c.rope) {
    const t = ropeTableTensors(T, D, { base: 100, offset: 3, dtype, backend: r.x.backend });
    r.cos = t.cos;
    r.sin = t.sin;
  }
  if (c.gate) r.z = mk([B, T, H * D], 6);
  return r;
}

/** The same steps composed of tensor ops (the reference: differentiated by autograd). */
function composed(c: Case, i: Inputs): Tensor {
  const [B, T, H, D] = i.x.shape;
  let s = i.x;
  if (c.shift && i.alpha) {
    const first = i.prev ? reshape(i.prev, [B, 1, H, D]) : zeros([B, 1, H, D], { dtype: s.dtype, backend: s.backend });
    let p = concat([first, narrow(i.x, 1, 0, T - 1)], 1);
    if (i.keep) p = mul(p, reshape(i.keep, [B, T, 1, 1]));
    s = add(i.x, mul(unsqueeze(sigmoid(i.alpha), -1), sub(p, i.x)));
  }
  if (c.norm && i.w) {
    const ms = mul(sum(mul(s, s), -1, true), 1 / D);
    const w = c.norm === 'head' ? reshape(i.w, [H, D]) : i.w;
    s = mul(mul(s, rsqrt(add(ms, EPS))), w);
  }
  if (c.rope && i.cos && i.sin) {
    const rot = concat([neg(narrow(s, -1, D / 2, D / 2)), narrow(s, -1, 0, D / 2)], -1);
    s = add(mul(s, i.cos), mul(rot, i.sin));
  }
  if (c.gate && i.z) s = mul(s, sigmoid(reshape(i.z, [B, T, H, D])));
  return s;
}

function fused(c: Case, i: Inputs): Tensor {
  return headFused(i.x, {
    shift: c.shift && i.alpha ? { logit: i.alpha, keep: i.keep ?? null, prev: i.prev ?? null } : undefined,
    norm: c.norm && i.w ? { weight: i.w, eps: EPS } : undefined,
    rope: c.rope && i.cos && i.sin ? { cos: i.cos, sin: i.sin } : undefined,
    gate: c.gate ? i.z : undefined,
  });
}

/** The differentiable inputs of a case (keep and the tables are constants). */
const diffKeys = (c: Case): (keyof Inputs)[] => [
  'x',
  ...(c.shift ? (['alpha'] as const) : []),
  ...(c.prev ? (['prev'] as const) : []),
  ...(c.norm ? (['w'] as const) : []),
  ...(c.gate ? (['z'] as const) : []),
];

/** Value and gradients of wsum(f(inputs)) by the differentiable inputs, as plain arrays. */
async function valueGrads(
  c: Case,
  i: Inputs,
  f: (c: Case, i: Inputs) => Tensor,
): Promise<{ y: number[]; grads: Record<string, number[]> }> {
  const keys = diffKeys(c);
  const p = Object.fromEntries(keys.map((k) => [k, i[k] as Tensor]));
  const r = valueAndGrad((q: Record<string, Tensor>) => {
    const out = f(c, { ...i, ...q });
    return { loss: wsum(out), aux: out };
  })(p);
  const y = Array.from(await r.aux.data());
  const grads: Record<string, number[]> = {};
  for (const k of keys) grads[k] = Array.from(await r.grads[k].data());
  dispose(r);
  return { y, grads };
}

const CASES: [string, Case][] = [
  ['RoPE', { rope: true }],
  ['shift', { shift: true }],
  ['shift with keep and prev', { shift: true, keep: true, prev: true }],
  ['QK-norm (per-head gain)', { norm: 'head' }],
  ['QK-norm (shared gain) + RoPE', { norm: 'shared', rope: true }],
  ['shift + QK-norm + RoPE (k of Transformer-Pro)', { shift: true, keep: true, norm: 'head', rope: true }],
  ['output norm + gate', { norm: 'head', gate: true }],
  ['gate', { gate: true }],
  ['everything', { shift: true, keep: true, prev: true, norm: 'head', rope: true, gate: true }],
];

describe('headFused on the CPU (float64) against the composed ops', () => {
  for (const [name, c] of CASES) {
    it(`${name}: the same values and gradients, odd sizes`, async () => {
      for (const shape of [
        [2, 5, 3, 6],
        [1, 7, 2, c.rope ? 4 : 5],
      ]) {
        const i = inputsOf(c, shape, 'float64', 'cpu');
        const want = await valueGrads(c, i, composed);
        const got = await valueGrads(c, i, fused);
        expect(maxDiff(got.y, want.y)).toBeLessThan(1e-12);
        for (const k of Object.keys(want.grads)) {
          expect(maxDiff(got.grads[k], want.grads[k]), k).toBeLessThan(1e-11);
        }
        dispose(i);
      }
    });
  }

  it('passes gradcheck (float64 finite differences) with every step on', () => {
    const c: Case = { shift: true, keep: true, prev: true, norm: 'head', rope: true, gate: true };
    const i = inputsOf(c, [2, 4, 2, 4], 'float64', 'cpu');
    const keys = diffKeys(c);
    const report = gradcheck(
      (...ts: Tensor[]) => wsum(fused(c, { ...i, ...Object.fromEntries(keys.map((k, j) => [k, ts[j]])) })),
      keys.map((k) => i[k] as Tensor),
    );
    expect(report.ok).toBe(true);
    dispose(i);
  });

  it('keeps nothing alive for RoPE alone; x and the per-row r for the shift + QK-norm', () => {
    // bytes live when the gradient reaches the op's output (a probe op's backward), above those
    // before the call: that gradient (y's size) plus what the op saved; x is computed inside the
    // loss, so keeping it costs its bytes
    let atBackward = 0;
    const probe = customOp({
      name: 'probe',
      saveInputs: false,
      saveOutputs: false,
      forward: (ts) => ({ outputs: [ts[0]] }),
      backward: (g) => {
        atBackward = memoryStats().backends.cpu.bytesInUse;
        return [g[0]];
      },
    });
    const live = (c: Case) => {
      const i = inputsOf(c, [1, 8, 2, 4], 'float64', 'cpu');
      const before = memoryStats().backends.cpu.bytesInUse;
      const r = valueAndGrad((x0: Tensor) => wsum(probe([fused(c, { ...i, x: mul(x0, 2) })])[0]))(i.x);
      dispose([r, i]);
      return (atBackward - before) / (64 * 8); // in units of x's bytes
    };
    const rope = live({ rope: true });
    expect(rope).toBeGreaterThan(0.99);
    expect(rope).toBeLessThan(1.1); // the gradient only
    const shiftNorm = live({ shift: true, norm: 'head', rope: true });
    expect(shiftNorm).toBeGreaterThan(2.2);
    expect(shiftNorm).toBeLessThan(2.4); // the gradient, x, r [16] (+ scalars)
  });

  it('names the input in errors', () => {
    const i = inputsOf({ norm: 'head' }, [1, 3, 2, 4], 'float64', 'cpu');
    expect(() => headFused(i.x, { norm: { weight: reshape(i.w as Tensor, [2, 4]), eps: EPS } })).toThrow(/norm\.weight/);
    expect(() => headFused(reshape(i.x, [3, 8]), {})).toThrow(/\[B,T,H,D\]/);
    dispose(i);
  });
});

describe.skipIf(!gpu)('headFused on WebGPU (float32) against the CPU in float64', () => {
  for (const [name, c] of CASES) {
    it(`${name}: values and gradients; rows across chunks, D of one and two lanes`, { timeout: 120_000 }, async () => {
      for (const shape of [
        [2, 37, 3, 6],
        [1, 70, 2, 80],
      ]) {
        const ic = inputsOf(c, shape, 'float64', 'cpu');
        const ig = inputsOf(c, shape, 'float32', gpu as Backend);
        const want = await valueGrads(c, ic, fused);
        const got = await valueGrads(c, ig, fused);
        const scale = (a: number[]) => Math.max(1, ...a.map(Math.abs));
        expect(maxDiff(got.y, want.y) / scale(want.y)).toBeLessThan(1e-5);
        for (const k of Object.keys(want.grads)) {
          expect(maxDiff(got.grads[k], want.grads[k]) / scale(want.grads[k]), k).toBeLessThan(1e-4);
        }
        dispose([ic, ig]);
      }
    });
  }
});

describe('attentionOutput: output norm and gate fused with the output projection', () => {
  /** o, norm weight, gate logits, projection weight [out, H·D] and bias. */
  const outInputs = (shape: number[], out: number, dtype: 'float32' | 'float64', backend: string | Backend) => {
    const c: Case = { norm: 'head', gate: true };
    const i = inputsOf(c, shape, dtype, backend);
    const [, , H, D] = shape;
    const mk = (n: number, seed: number, dims: number[]) => {
      const v = values(n, seed, -0.5, 0.5);
      return tensor(dtype === 'float64' ? Float64Array.from(v) : Float32Array.from(v), dims, { dtype, backend });
    };
    return { ...i, pw: mk(out * H * D, 21, [out, H * D]), pb: mk(out, 22, [out]) };
  };
  type P = { x: Tensor; w: Tensor; z: Tensor; pw: Tensor; pb: Tensor };
  const viaFused = (p: P, bias: boolean) =>
    attentionOutput(p.x, { norm: { weight: p.w, eps: EPS }, gate: p.z }, { weight: p.pw, ...(bias ? { bias: p.pb } : {}) });
  const viaComposed = (p: P, bias: boolean) => {
    const [B, T, H, D] = p.x.shape;
    const m = reshape(composed({ norm: 'head', gate: true }, { x: p.x, w: p.w, z: p.z }), [B, T, H * D]);
    const y = matmul(m, transpose(p.pw));
    return bias ? add(y, p.pb) : y;
  };
  const run = async (p: P, f: (p: P, bias: boolean) => Tensor, bias: boolean) => {
    const keys = ['x', 'w', 'z', 'pw', ...(bias ? ['pb'] : [])] as const;
    const r = valueAndGrad((q: P) => {
      const out = f(q, bias);
      return { loss: wsum(out), aux: out };
    })(p);
    const y = Array.from(await r.aux.data());
    const grads: Record<string, number[]> = {};
    for (const k of keys) grads[k] = Array.from(await (r.grads as unknown as Record<string, Tensor>)[k].data());
    dispose(r);
    return { y, grads };
  };

  it('the same values and gradients as headFused + linear (CPU, float64, with and without bias)', async () => {
    for (const bias of [true, false]) {
      const i = outInputs([2, 5, 3, 6], 7, 'float64', 'cpu');
      const p = { x: i.x, w: i.w as Tensor, z: i.z as Tensor, pw: i.pw, pb: i.pb };
      const want = await run(p, viaComposed, bias);
      const got = await run(p, viaFused, bias);
      expect(maxDiff(got.y, want.y)).toBeLessThan(1e-12);
      for (const k of Object.keys(want.grads)) expect(maxDiff(got.grads[k], want.grads[k]), k).toBeLessThan(1e-11);
      dispose(i);
    }
  });

  it('passes gradcheck (float64 finite differences)', () => {
    const i = outInputs([1, 4, 2, 4], 3, 'float64', 'cpu');
    const report = gradcheck(
      (x: Tensor, w: Tensor, z: Tensor, pw: Tensor, pb: Tensor) => wsum(viaFused({ x, w, z, pw, pb }, true)),
      [i.x, i.w as Tensor, i.z as Tensor, i.pw, i.pb],
    );
    expect(report.ok).toBe(true);
    dispose(i);
  });

  it.skipIf(!gpu)('WebGPU (float32) against the CPU in float64', { timeout: 120_000 }, async () => {
    const shape = [2, 37, 3, 6];
    const ic = outInputs(shape, 5, 'float64', 'cpu');
    const ig = outInputs(shape, 5, 'float32', gpu as Backend);
    const pc = { x: ic.x, w: ic.w as Tensor, z: ic.z as Tensor, pw: ic.pw, pb: ic.pb };
    const pg = { x: ig.x, w: ig.w as Tensor, z: ig.z as Tensor, pw: ig.pw, pb: ig.pb };
    const want = await run(pc, viaFused, true);
    const got = await run(pg, viaFused, true);
    const scale = (a: number[]) => Math.max(1, ...a.map(Math.abs));
    expect(maxDiff(got.y, want.y) / scale(want.y)).toBeLessThan(1e-5);
    for (const k of Object.keys(want.grads)) expect(maxDiff(got.grads[k], want.grads[k]) / scale(want.grads[k]), k).toBeLessThan(1e-4);
    dispose([ic, ig]);
  });
});
