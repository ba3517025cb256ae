import * as T from '@foxgate/tensor';
import { memoryStats, type Tensor } from '@foxgate/tensor';
import { describe, expect, it } from 'vitest';
import { customOp, grad, gradcheck, noGrad, unbroadcast, valueAndGrad } from '../src/index.js';
import { maxDiff, reseed, rnd, wsum } from './util.js';

/** The CPU backend's live tensors, storages and bytes (not the peak, which only grows). */
const cpu = () => {
  const { peakBytes: _peak, ...live } = memoryStats().backends.cpu;
  return live;
};

/**
 * A "fused" softmax along the last axis with its own backward (dx = s ∘ (g − Σ g·s)), saving
 * only its output: the pattern the attention kernels use.
 */
const fusedSoftmax = customOp<{ scale: number }>({
  name: 'fusedSoftmax',
  forward: ([x], { scale }) => {
    const s = T.softmax(T.mul(x, scale));
    return { outputs: [s], saved: [s] };
  },
  backward: ([g], [s], _inputs, _outputs, { scale }) => {
    if (!g) return [null];
    const dot = T.sum(T.mul(g, s), -1, true);
    return [T.mul(T.mul(s, T.sub(g, dot)), scale)];
  },
  saveInputs: false,
  saveOutputs: false,
});

/** Two outputs, two inputs with broadcasting: (a·b, a + b), saving both inputs. */
const mulAdd = customOp({
  name: 'mulAdd',
  forward: ([a, b]) => ({ outputs: [T.mul(a, b), T.add(a, b)], saved: [a, b] }),
  backward: ([gp, gs], [a, b]) => {
    const da = [gp ? T.mul(gp, b) : null, gs].filter((t): t is Tensor => t !== null);
    const db = [gp ? T.mul(gp, a) : null, gs].filter((t): t is Tensor => t !== null);
    const sumAll = (ts: Tensor[], like: Tensor) =>
      unbroadcast(
        ts.reduce((acc, t) => T.add(acc, t)),
        like.shape,
      );
    return [sumAll(da, a), sumAll(db, b)];
  },
});

describe('customOp', () => {
  it('matches the composed reference and passes gradcheck', () => {
    reseed(11);
    const x = rnd([3, 5]);
    const ref = valueAndGrad((p: Tensor) => wsum(T.softmax(T.mul(p, 0.7))))(x);
    const got = valueAndGrad((p: Tensor) => wsum(fusedSoftmax([p], { scale: 0.7 })[0]))(x);
    expect(Math.abs(got.value.itemSync() - ref.value.itemSync())).toBeLessThan(1e-15);
    expect(maxDiff(got.grads.dataSync(), ref.grads.dataSync())).toBeLessThan(1e-15);
    expect(gradcheck((p) => wsum(fusedSoftmax([T.transpose(p)], { scale: 1.3 })[0]), [rnd([4, 3])]).ok).toBe(true);
  });

  it('handles several outputs, a null gradient for an unused output, and inputs saved as-is', () => {
    reseed(12);
    const a = rnd([2, 3]);
    const b = rnd([3]);
    expect(gradcheck((a, b) => wsum(T.add(mulAdd([a, b])[0], T.mul(mulAdd([a, b])[1], 3))), [a, b]).ok).toBe(true);
    let seen: (Tensor | null)[] = [];
    const spy = customOp({
      name: 'spy',
      forward: ([x]) => ({ outputs: [T.mul(x, 2), T.mul(x, 3)] }),
      backward: (gs) => {
        seen = [...gs];
        return [T.mul(gs[0] as Tensor, 2)];
      },
    });
    const g = grad((p: Tensor) => T.sum(spy([p])[0]))(b);
    expect(seen[0]).not.toBeNull();
    expect(seen[1]).toBeNull();
    expect(g.toArraySync()).toEqual([2, 2, 2]);
    expect(a.isDisposed).toBe(false);
    expect(b.isDisposed).toBe(false);
  });

  it('frees saved tensors right after the backward that needs them', () => {
    const x = T.tensor([0.1, 0.2, 0.3], [3], { dtype: 'float64' });
    const savedOf: Record<string, Tensor> = {};
    const stage = (name: string) =>
      customOp({
        name,
        forward: ([v]) => {
          const t = T.exp(v);
          savedOf[name] = t;
          return { outputs: [T.mul(t, 1)], saved: [t] };
        },
        backward: ([g], [t]) => {
          // the later stage (run first in backward) has already released its saved tensor
          if (name === 'first') expect(savedOf.second.isDisposed).toBe(true);
          expect(t.isDisposed).toBe(false);
          return [T.mul(g as Tensor, t)];
        },
      });
    const first = stage('first');
    const second = stage('second');
    const g = grad((p: Tensor) => T.sum(second(first([p]))[0]))(x);
    expect(savedOf.first.isDisposed).toBe(true);
    // d/dx exp(exp(x)) = exp(exp(x))·exp(x)
    const want = [0.1, 0.2, 0.3].map((v) => Math.exp(Math.exp(v)) * Math.exp(v));
    expect(maxDiff(g.dataSync(), want)).toBeLessThan(1e-14);
  });

  it('outside a gradient computation (or in noGrad) runs forward only and frees saved tensors', () => {
    const x = T.tensor([1, 2, 3], [3], { dtype: 'float64' });
    const before = cpu();
    const [y] = fusedSoftmax([x], { scale: 1 });
    expect(cpu().tensors).toBe(before.tensors + 1);
    y.dispose();
    const [p, s] = noGrad(() => mulAdd([x, x]));
    expect(s.toArraySync()).toEqual([2, 4, 6]);
    T.dispose([p, s]);
    expect(cpu()).toEqual(before);
    expect(x.isDisposed).toBe(false);
  });

  it('records nothing (and frees saved) when no input needs a gradient', () => {
    const w = T.tensor([2], [1], { dtype: 'float64' });
    const c = T.tensor([1, 2], [2], { dtype: 'float64' });
    let calls = 0;
    const op = customOp({
      name: 'counted',
      forward: ([v]) => ({ outputs: [T.mul(v, 1)], saved: [T.mul(v, 1)] }),
      backward: ([g]) => {
        calls++;
        return [g];
      },
    });
    const before = cpu();
    const out = grad((p: Tensor) => T.sum(T.mul(op([c])[0], p)))(w);
    expect(out.toArraySync()).toEqual([3]);
    expect(calls).toBe(0);
    out.dispose();
    expect(cpu()).toEqual(before);
  });

  it('may return its gradient arguments and saved tensors as gradients (identity / passthrough)', () => {
    const x = T.tensor([1, 2], [2], { dtype: 'float64' });
    const identity = customOp({
      name: 'identity',
      forward: ([v]) => ({ outputs: [v], saved: [v] }),
      backward: ([g]) => [g],
    });
    const useSaved = customOp({
      name: 'useSaved',
      forward: ([v]) => ({ outputs: [T.mul(v, v)], saved: [T.mul(v, 2)] }),
      backward: (_g, [twoV]) => [twoV], // assumes g = 1, fine for Σ
    });
    const before = cpu();
    const g = grad((p: Tensor) => T.add(T.sum(identity([p])[0]), T.sum(useSaved([p])[0])))(x);
    expect(g.toArraySync()).toEqual([3, 5]);
    g.dispose();
    expect(cpu()).toEqual(before);
    expect(x.toArraySync()).toEqual([1, 2]);
  });

  it('reports a backward that returns the wrong shape, naming the op', () => {
    const x = T.tensor([1, 2, 3], [3], { dtype: 'float64' });
    const bad = customOp({
      name: 'badShape',
      forward: ([v]) => ({ outputs: [T.mul(v, 2)] }),
      backward: () => [T.zeros([2], { dtype: 'float64' })],
    });
    const wrongCount = customOp({ name: 'wrongCount', forward: ([v]) => ({ outputs: [T.mul(v, 2)] }), backward: () => [] });
    const before = cpu();
    expect(() => grad((p: Tensor) => T.sum(bad([p])[0]))(x)).toThrow(
      /badShape: backward returned a float64\[2\] gradient for input 0 of float64\[3\]/,
    );
    expect(() => grad((p: Tensor) => T.sum(wrongCount([p])[0]))(x)).toThrow(/wrongCount: backward must return an array of 1 gradients/);
    expect(() => customOp({ name: 'x' } as never)).toThrow(/customOp: needs/);
    expect(cpu()).toEqual(before);
  });
});
