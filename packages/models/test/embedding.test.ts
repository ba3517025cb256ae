import { gradcheck, valueAndGrad } from '@foxgate/autograd';
import { dispose, memoryStats, rngKey, scalar, type Tensor, tensor, zeros } from '@foxgate/tensor';
import { describe, expect, it } from 'vitest';
import { type EmbeddingParams, embedding, initEmbedding } from '../src/index.js';
import { f64, maxDiff, stats, throwsNaming, values, wsum } from './util.js';

const i32 = (data: number[], shape: number[]) => tensor(Int32Array.from(data), shape, { dtype: 'int32', backend: 'cpu' });

describe('embedding: a row gather from weight [vocab, dim]', () => {
  const [V, D] = [7, 3];
  const ws = values(V * D, 1);

  it('matches plain loops for ids [2,4] with repeats (float64)', () => {
    const ids = [3, 0, 6, 3, 1, 1, 5, 0];
    const p = { weight: f64(ws, [V, D]) };
    const t = i32(ids, [2, 4]);
    const y = embedding(p, t);
    expect(y.shape).toEqual([2, 4, D]);
    expect(y.dtype).toBe('float64');
    const expected: number[] = [];
    for (const id of ids) for (let d = 0; d < D; d++) expected.push(ws[id * D + d]);
    expect([...y.dataSync()]).toEqual(expected); // a gather is exact
    dispose([p, t, y]);
  });

  it('1-D and scalar ids: [n] → [n, dim], [] → [dim]', () => {
    const p = { weight: f64(ws, [V, D]) };
    const t1 = i32([6, 2], [2]);
    const y1 = embedding(p, t1);
    expect(y1.shape).toEqual([2, D]);
    expect([...y1.dataSync()]).toEqual([...ws.slice(6 * D, 7 * D), ...ws.slice(2 * D, 3 * D)]);
    const t0 = scalar(4, { dtype: 'int32', backend: 'cpu' });
    const y0 = embedding(p, t0);
    expect(y0.shape).toEqual([D]);
    expect([...y0.dataSync()]).toEqual(ws.slice(4 * D, 5 * D));
    dispose([p, t1, y1, t0, y0]);
  });

  it('only the output stays alive', () => {
    const p = { weight: f64(ws, [V, D]) };
    const t = i32([1, 2, 3], [3]);
    const before = memoryStats().backends.cpu.tensors;
    const y = embedding(p, t);
    expect(memoryStats().backends.cpu.tensors).toBe(before + 1);
    dispose([p, t, y]);
  });
});

describe('embedding gradients', () => {
  const [V, D] = [5, 2];
  const ids = [2, 4, 2, 0, 2, 4]; // 2 three times, 4 twice, 0 once, 1 and 3 never

  it('d weight is the scatter-add of the output gradient: repeated ids accumulate, unused rows are 0', () => {
    const w = f64(values(V * D, 2), [V, D]);
    const t = i32(ids, [2, 3]);
    const { value, grads } = valueAndGrad((q: EmbeddingParams) => wsum(embedding(q, t)))({ weight: w });
    // ∂/∂y Σ y·G = G, the fixed weights of wsum ([2,3,D] row-major)
    const G = values(ids.length * D, 12345, -1, 1);
    const expected = new Array<number>(V * D).fill(0);
    ids.forEach((id, j) => {
      for (let d = 0; d < D; d++) expected[id * D + d] += G[j * D + d];
    });
    expect(grads.weight.shape).toEqual([V, D]);
    expect(maxDiff(grads.weight.dataSync(), expected)).toBeLessThan(1e-15);
    for (const unused of [1, 3]) expect([...grads.weight.dataSync().slice(unused * D, unused * D + D)]).toEqual([0, 0]);
    // row 2 is the sum of three output rows
    expect(grads.weight.dataSync()[2 * D]).toBeCloseTo(G[0] + G[2 * D] + G[4 * D], 15);
    dispose([w, t, value, grads]);
  });

  it('passes gradcheck in weight (float64); the int32 ids are left unchecked', () => {
    const w = f64(values(V * D, 3), [V, D]);
    const t = i32(ids, [2, 3]);
    const report = gradcheck((ww, tt) => wsum(embedding({ weight: ww }, tt)), [w, t]);
    expect(report.ok).toBe(true);
    expect(report.inputs.map((r) => r.checked)).toEqual([true, false]);
    dispose([w, t]);
  });
});

describe('initEmbedding', () => {
  it('weight [vocab, dim] ~ N(0, 0.02²) by default (mean and std within sampling error)', () => {
    const { weight } = initEmbedding(rngKey(11), 512, 128, { backend: 'cpu' });
    expect(weight.shape).toEqual([512, 128]);
    expect(weight.dtype).toBe('float32');
    const n = weight.size;
    const { mean, std } = stats(weight.dataSync());
    expect(Math.abs(mean)).toBeLessThan((5 * 0.02) / Math.sqrt(n));
    expect(Math.abs(std - 0.02)).toBeLessThan((5 * 0.02) / Math.sqrt(2 * n));
    weight.dispose();
  });

  it('honours std and dtype; the same key gives the same table, another key another', () => {
    const a = initEmbedding(rngKey(5), 256, 256, { std: 1, dtype: 'float64', backend: 'cpu' });
    expect(a.weight.dtype).toBe('float64');
    expect(Math.abs(stats(a.weight.dataSync()).std - 1)).toBeLessThan(5 / Math.sqrt(2 * 256 * 256));
    const b = initEmbedding(rngKey(5), 16, 4, { backend: 'cpu' });
    const c = initEmbedding(rngKey(5), 16, 4, { backend: 'cpu' });
    const d = initEmbedding(rngKey(6), 16, 4, { backend: 'cpu' });
    expect([...b.weight.dataSync()]).toEqual([...c.weight.dataSync()]);
    const bd = b.weight.dataSync();
    expect(d.weight.dataSync().every((v, i) => v !== bd[i])).toBe(true);
    dispose([a, b, c, d]);
  });
});

describe('embedding and initEmbedding errors name the function and the argument', () => {
  const p = { weight: zeros([5, 2], { backend: 'cpu' }) };

  it('ids that are not int32, a weight that is not 2-D, not tensors', () => {
    const fx = zeros([3], { backend: 'cpu' });
    expect(throwsNaming(() => embedding(p, fx))).toBe('embedding: ids must be int32, got float32[3]');
    const ids = i32([0, 1], [2]);
    expect(throwsNaming(() => embedding({ weight: zeros([5], { backend: 'cpu' }) }, ids))).toBe(
      'embedding: p.weight must be [vocab, dim], got [5]',
    );
    throwsNaming(() => embedding(p, [0, 1] as unknown as Tensor), /^embedding: ids must be a Tensor, got an array$/);
    throwsNaming(() => embedding({} as EmbeddingParams, ids), /^embedding: p.weight must be a Tensor, got undefined$/);
    throwsNaming(() => embedding(null as unknown as EmbeddingParams, ids), /^embedding: p must be \{weight\}, got null$/);
    dispose([fx, ids]);
  });

  it('an id outside [0, vocab) throws on the CPU, naming the id and the vocabulary size', () => {
    const ids = i32([0, 5, 1], [3]);
    throwsNaming(() => embedding(p, ids), 'index 5', 'size 5');
    const neg = i32([-1], [1]);
    throwsNaming(() => embedding(p, neg), 'index -1');
    dispose([ids, neg]);
  });

  it('dims that are not positive integers, an int dtype', () => {
    expect(throwsNaming(() => initEmbedding(rngKey(0), 0, 4))).toBe('initEmbedding: vocab must be a positive integer, got 0');
    throwsNaming(() => initEmbedding(rngKey(0), 4, 1.5), /^initEmbedding: dim must be a positive integer, got 1.5$/);
    throwsNaming(() => initEmbedding(rngKey(0), 4, 4, { dtype: 'int32' }), /^initEmbedding: dtype must be float32 or float64, got int32$/);
  });
});
