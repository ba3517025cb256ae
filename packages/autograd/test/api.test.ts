import * as T from '@foxgate/tensor';
import { getBackend, getRecorder, memoryStats, type Tensor } from '@foxgate/tensor';
import { describe, expect, it } from 'vitest';
import { grad, gradcheck, noGrad, stopGradient, valueAndGrad } from '../src/index.js';

const f64 = (data: T.NestedArray, shape?: number[]) => T.tensor(data, shape, { dtype: 'float64' });
/** The CPU backend's live tensors, storages and bytes (not the peak, which only grows). */
const cpu = () => {
  const { peakBytes: _peak, ...live } = memoryStats().backends.cpu;
  return live;
};

describe('valueAndGrad / grad', () => {
  it('returns value and hand-derived gradients: L = Σ w·x + Σ w² → dL/dw = x + 2w', () => {
    const w = f64([1, -2, 3]);
    const x = f64([0.5, 4, -1]);
    const { value, grads } = valueAndGrad((p: { w: Tensor }, x: Tensor) => T.add(T.sum(T.mul(p.w, x)), T.sum(T.mul(p.w, p.w))))({ w }, x);
    expect(value.itemSync()).toBe(0.5 - 8 - 3 + 14);
    expect(grads.w.toArraySync()).toEqual([2.5, 0, 5]);
  });

  it('accumulates the gradient of a tensor used several times: Σ x·x·x + Σ x → 3x² + 1', () => {
    const x = f64([1, 2, -3]);
    const g = grad((p: Tensor) => T.add(T.sum(T.mul(T.mul(p, p), p)), T.sum(p)))(x);
    expect(g.toArraySync()).toEqual([4, 13, 28]);
  });

  it('gives gradients with the structure of the parameter tree', () => {
    const params = {
      layer: {
        w: f64([
          [1, 2],
          [3, 4],
        ]),
        b: f64([0.5, -0.5]),
      },
      list: [f64([2]), 7, 'name', null],
      map: new Map([['scale', f64(3, [])]]),
      unused: f64([1, 1, 1]),
      steps: T.tensor([4], [1], { dtype: 'int32' }),
      flag: true,
    };
    const x = f64([1, -1]);
    const f = (p: typeof params, x: Tensor) => {
      const h = T.add(T.matmul(p.layer.w, x), p.layer.b); // [-1+0.5, -1-0.5] = [-0.5, -1.5]
      const s = p.map.get('scale') as Tensor;
      return T.mul(T.sum(T.mul(h, p.list[0] as Tensor)), s); // 3·2·Σh
    };
    const { value, grads } = valueAndGrad(f)(params, x);
    expect(value.itemSync()).toBe(3 * 2 * -2);
    expect(Object.keys(grads)).toEqual(Object.keys(params));
    expect(grads.layer.w.toArraySync()).toEqual([
      [6, -6],
      [6, -6],
    ]);
    expect(grads.layer.b.toArraySync()).toEqual([6, 6]);
    expect((grads.list[0] as Tensor).toArraySync()).toEqual([3 * -2]);
    expect(grads.list.slice(1)).toEqual([7, 'name', null]);
    expect(grads.map).toBeInstanceOf(Map);
    expect((grads.map.get('scale') as Tensor).itemSync()).toBe(2 * -2);
    expect(grads.unused.toArraySync()).toEqual([0, 0, 0]);
    expect(grads.steps.dtype).toBe('int32');
    expect(grads.steps.toArraySync()).toEqual([0]);
    expect(grads.flag).toBe(true);
    for (const g of [grads.layer.w, grads.layer.b, grads.unused]) expect(g.isContiguous).toBe(true);
  });

  it('gives a repeated leaf its own gradient tensor in each position', () => {
    const w = f64([1, 2]);
    const { grads } = valueAndGrad((p: Tensor[]) => T.sum(T.mul(p[0], p[0])))([w, w]);
    expect(grads[0]).not.toBe(grads[1]);
    expect(grads[0].toArraySync()).toEqual([2, 4]);
    grads[0].dispose();
    expect(grads[1].toArraySync()).toEqual([2, 4]);
  });

  it('returns aux outputs, alive, and zeros for a loss that ignores the params', () => {
    const w = f64([1, 2]);
    const c = f64([3, 4]);
    const out = valueAndGrad((p: Tensor) => {
      const pred = T.mul(p, 2);
      return { loss: T.sum(c), aux: { pred, tag: 'x' } };
    })(w);
    expect(out.value.itemSync()).toBe(7);
    expect(out.aux.tag).toBe('x');
    expect(out.aux.pred.toArraySync()).toEqual([2, 4]);
    expect(out.grads.toArraySync()).toEqual([0, 0]);
  });

  it('handles a loss that is a parameter itself (value is a separate tensor object)', () => {
    const s = f64(5, []);
    const { value, grads } = valueAndGrad((p: Tensor) => p)(s);
    expect(value).not.toBe(s);
    expect(grads.itemSync()).toBe(1);
    value.dispose();
    expect(s.itemSync()).toBe(5);
  });

  it('grad() frees the loss and aux, also when they were made outside the tape', () => {
    const w = f64([1, 2]);
    const before = cpu();
    const g = grad((p: Tensor) => ({ loss: noGrad(() => T.sum(T.mul(p, 3))), aux: { extra: T.zeros([4]) } }))(w);
    expect(g.toArraySync()).toEqual([0, 0]); // the loss did not depend on p through the tape
    g.dispose();
    expect(cpu()).toEqual(before);
  });

  it('treats rest arguments as constants', () => {
    const w = f64([2]);
    const x = f64([3]);
    const g = grad((p: Tensor, x: Tensor) => T.sum(T.mul(p, x)))(w, x);
    expect(g.toArraySync()).toEqual([3]);
  });

  it('makes gradients contiguous unless asked not to', () => {
    const x = f64([
      [1, 2],
      [3, 4],
    ]);
    expect(grad((p: Tensor) => T.sum(p))(x).isContiguous).toBe(true);
    const view = grad((p: Tensor) => T.sum(p), { contiguous: false })(x);
    expect(view.strides).toEqual([0, 0]); // the expanded seed
    expect(view.toArraySync()).toEqual([
      [1, 1],
      [1, 1],
    ]);
  });

  it('float32 → float64 → float32 casts pass the gradient; casts to int cut it', () => {
    const x = T.tensor([1.5, -2.25], [2]);
    const w = f64([3, 5]);
    const g = grad((p: Tensor) => T.sum(T.mul(T.cast(p, 'float64'), w)))(x);
    expect(g.dtype).toBe('float32');
    expect(g.toArraySync()).toEqual([3, 5]);
    const g2 = grad((p: Tensor) => T.add(T.sum(T.cast(T.cast(p, 'int32'), 'float32')), T.sum(p)))(x);
    expect(g2.toArraySync()).toEqual([1, 1]);
  });

  it('rejects non-scalar losses and other results, restoring the recorder and freeing memory', () => {
    const x = f64([1, 2]);
    const before = cpu();
    expect(() => grad((p: Tensor) => T.mul(p, 2))(x)).toThrow(/scalar loss \(one element\), got shape \[2\]/);
    expect(() => grad((_p: Tensor) => 3 as unknown as Tensor)(x)).toThrow(/must return a scalar loss Tensor or \{ loss: Tensor, aux \}/);
    expect(() =>
      grad((p: Tensor) => {
        T.mul(p, p);
        throw new Error('boom');
      })(x),
    ).toThrow('boom');
    expect(getRecorder()).toBeNull();
    expect(cpu()).toEqual(before);
  });

  it('survives user code that disposes intermediates inside f', () => {
    const x = f64([0.5, -1, 2]);
    const f = (p: Tensor) => {
      const a = T.exp(p);
      const b = T.mul(a, p);
      a.dispose(); // the tape holds its own reference to what backward needs
      const s = T.sum(b);
      b.dispose();
      return s;
    };
    const g = grad(f)(x);
    const xs = [0.5, -1, 2];
    const expected = xs.map((v) => Math.exp(v) * (1 + v)); // d(x·eˣ) = eˣ(1 + x)
    const got = g.dataSync();
    for (let i = 0; i < xs.length; i++) expect(got[i]).toBeCloseTo(expected[i], 14);
  });

  it('never reads data back from the backend', () => {
    const b = getBackend('cpu');
    const spy = b as unknown as { read: (...a: unknown[]) => unknown; readSync?: (...a: unknown[]) => unknown };
    const { read, readSync } = spy;
    let reads = 0;
    spy.read = (...a) => {
      reads++;
      return read.apply(b, a);
    };
    spy.readSync = (...a) => {
      reads++;
      return readSync?.apply(b, a);
    };
    try {
      const w = T.tensor([
        [0.1, 0.2],
        [0.3, 0.4],
      ]);
      const x = T.tensor([
        [1, 2],
        [3, 4],
        [5, 6],
      ]);
      const y = T.tensor([1, 0, 1], [3], { dtype: 'int32' });
      const out = valueAndGrad((p: Tensor) => T.crossEntropy(T.silu(T.matmul(x, p)), y))(w);
      T.dispose([out, w, x, y]);
    } finally {
      spy.read = read;
      spy.readSync = readSync;
    }
    expect(reads).toBe(0);
  });
});

describe('stopGradient and noGrad', () => {
  it('stopGradient passes the value and cuts the gradient: d Σ x·sg(x) = x', () => {
    const x = f64([1, -2, 3]);
    const { value, grads } = valueAndGrad((p: Tensor) => T.sum(T.mul(p, stopGradient(p))))(x);
    expect(value.itemSync()).toBe(14);
    expect(grads.toArraySync()).toEqual([1, -2, 3]);
  });

  it('noGrad runs without recording: d Σ x·noGrad(2x) = 2x', () => {
    const x = f64([1, -2, 3]);
    const g = grad((p: Tensor) =>
      T.sum(
        T.mul(
          p,
          noGrad(() => T.mul(p, 2)),
        ),
      ),
    )(x);
    expect(g.toArraySync()).toEqual([2, -4, 6]);
    expect(noGrad(() => 42)).toBe(42);
  });

  it('nested gradient calls are constants for the outer one', () => {
    const x = f64([1, 2]);
    const outer = grad((p: Tensor) => {
      const inner = grad((q: Tensor) => T.sum(T.mul(q, q)))(p); // 2p, but a constant here
      return T.sum(T.mul(p, inner));
    })(x);
    expect(outer.toArraySync()).toEqual([2, 4]);
  });
});

describe('gradcheck', () => {
  it('names the input and the worst element when autograd and finite differences disagree', () => {
    const x = f64([0.3, -0.7]);
    const w = f64([
      [1, 2],
      [3, 4],
    ]);
    // floor's gradient is 0, but in float64 the finite difference of floor(1000·x)/1000 ≈ x sees its slope
    const report = gradcheck((a, b) => T.sum(T.matmul(T.div(T.floor(T.mul(a, 1e6)), 1e6), b)), [x, w], { raise: false, eps: 1e-3 });
    expect(report.ok).toBe(false);
    expect(report.inputs[0].failures).toBe(2);
    expect(report.inputs[0].worst?.autograd).toBe(0);
    expect(report.inputs[1].failures).toBe(0);
    expect(report.message).toMatch(/^failed \(eps 0\.001\)\ninput 0 \[2\]: 2 element\(s\) outside atol/);
    expect(() => gradcheck((a) => T.sum(T.floor(T.mul(a, 1e6))), [x], { eps: 1e-3 })).toThrow(
      /gradcheck: failed .*\ninput 0 \[2\]: 2 element/,
    );
  });

  it('passes non-float inputs through unchecked', () => {
    const x = f64([
      [1, 2, 3],
      [0, 1, 0],
    ]);
    const y = T.tensor([2, 0], [2], { dtype: 'int32' });
    const report = gradcheck((a, labels) => T.crossEntropy(a, labels), [x, y]);
    expect(report.inputs.map((r) => r.checked)).toEqual([true, false]);
  });
});
