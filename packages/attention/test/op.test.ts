import { valueAndGrad } from '@foxgate/autograd';
import { add, mul, sum, type Tensor, tensor } from '@foxgate/tensor';
import { destroyTestWebGPU, testWebGPU, throwsNaming } from '@foxgate/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { defineFusedOp, type HostTensor, jsGemm } from '../src/dev.js';

/**
 * The fused-op scaffold on a toy op: `y = a·x + b` with an optional `b` (inputs [x, b | null]),
 * reference `mul(x, a) + b`, a CPU kernel that records its calls, no WebGPU kernel.
 */
const gpu = await testWebGPU();
afterAll(destroyTestWebGPU);

const calls: string[] = [];
const axpb = defineFusedOp<{ a: number }>({
  name: 'axpb',
  reference([x, b], { a }) {
    const y = mul(x as Tensor, a);
    return [b ? add(y, b) : y];
  },
  cpu: {
    forward([x, b], { a }) {
      calls.push(`forward b=${b !== null}`);
      const xs = x as HostTensor;
      const y = xs.data.map((v, i) => a * v + (b ? b.data[i] : 0));
      return { outputs: [{ data: y, shape: xs.shape }], saved: [] };
    },
    backward([g], _saved, [x, b], _outputs, { a }) {
      calls.push('backward');
      if (!g) return [null, null];
      return [{ data: g.data.map((v) => 3 * a * v), shape: (x as HostTensor).shape }, b ? g : null];
    },
  },
  stats: [],
});

describe('defineFusedOp', () => {
  it('runs the CPU kernel on host arrays, keeps null inputs in place, and uses its backward', () => {
    calls.length = 0;
    const x = tensor(Float32Array.from([1, 2, 3]), [3]);
    const b = tensor(Float32Array.from([10, 20, 30]), [3]);
    const [y] = axpb([x, b], { a: 2 });
    expect(Array.from(y.dataSync())).toEqual([12, 24, 36]);
    const [y0] = axpb([x, null], { a: 2 });
    expect(Array.from(y0.dataSync())).toEqual([2, 4, 6]);
    // the backward deliberately returns 3·a·g for x (not the true a·g): proves the kernel's VJP is used
    const { grads } = valueAndGrad((p: { x: Tensor; b: Tensor }) => sum(axpb([p.x, p.b], { a: 2 })[0]))({ x, b });
    expect(Array.from(grads.x.dataSync())).toEqual([6, 6, 6]);
    expect(Array.from(grads.b.dataSync())).toEqual([1, 1, 1]);
    expect(calls).toEqual(['forward b=true', 'forward b=false', 'forward b=true', 'backward']);
    for (const t of [x, b, y, y0, grads.x, grads.b]) t.dispose();
  });

  it("routes impl: 'reference' to the composed ops (autograd's gradient, not the kernel's)", () => {
    calls.length = 0;
    const x = tensor(Float32Array.from([1, 2]), [2]);
    const { grads } = valueAndGrad((p: { x: Tensor }) => sum(axpb([p.x, null], { a: 2 }, 'reference')[0]))({ x });
    expect(Array.from(grads.x.dataSync())).toEqual([2, 2]);
    expect(calls).toEqual([]);
    x.dispose();
    grads.x.dispose();
  });

  it.skipIf(!gpu)('a backend without a kernel slot is an error naming the op, the backend and the way out', async () => {
    const x = tensor(Float32Array.from([1, 2]), [2], { backend: gpu as never });
    throwsNaming(
      () => axpb([x, null], { a: 2 }),
      /^axpb: the webgpu backend has no fused kernel \(fused kernels: cpu\)/,
      "impl: 'reference'",
    );
    const [r] = axpb([x, null], { a: 2 }, 'reference');
    expect(Array.from(await r.data())).toEqual([2, 4]);
    x.dispose();
    r.dispose();
  });

  it('jsGemm: batched strided products (the CPU kernels default)', () => {
    // A = [[1,2],[3,4]] and its transpose as a view; B = [[5],[6]]; batch 2 with the second A doubled
    const a = Float64Array.from([1, 2, 3, 4, 2, 4, 6, 8]);
    const b = Float64Array.from([5, 6, 5, 6]);
    const c = jsGemm(
      { data: a, offset: 0, batch: 2, batchStride: 4, rows: 2, cols: 2, rowStride: 2, colStride: 1 },
      { data: b, offset: 0, batch: 2, batchStride: 2, rows: 2, cols: 1, rowStride: 1, colStride: 1 },
    );
    expect(Array.from(c)).toEqual([17, 39, 34, 78]);
    const t = jsGemm(
      { data: a, offset: 0, batch: 1, batchStride: 0, rows: 2, cols: 2, rowStride: 1, colStride: 2 },
      { data: b, offset: 0, batch: 1, batchStride: 0, rows: 2, cols: 1, rowStride: 1, colStride: 1 },
    );
    expect(Array.from(t)).toEqual([23, 34]);
  });
});
