import { FoxgateError, tensor } from '@foxgate/tensor';
import { describe, expect, it } from 'vitest';
import { checkSameTree, dottedPath, fmtPath, type PathSegment, zipTree } from '../src/index.js';

const t = (v: number[], shape = [v.length]) => tensor(v, shape, { backend: 'cpu' });

describe('fmtPath / dottedPath', () => {
  const path: PathSegment[] = [{ key: 'layers' }, { index: 1 }, { key: 'odd key' }, { mapKey: 'a' }, { mapKey: 3 }];
  it('formats record keys, indices and Map keys', () => {
    expect(fmtPath('params', path)).toBe('params.layers[1]["odd key"].get("a").get(3)');
    expect(dottedPath(path)).toBe('layers.1.odd key.a.3');
    expect(fmtPath('root', [])).toBe('root');
  });
});

describe('checkSameTree', () => {
  const ref = { layers: [{ w: t([1, 2]) }], blocks: new Map([['a', t([3])]]), step: 1 };
  it('accepts a tree of the same structure, shapes and dtypes', () => {
    expect(() =>
      checkSameTree('op', ref, 'params', { layers: [{ w: t([0, 0]) }], blocks: new Map([['a', t([0])]]), step: 9 }, 'grads'),
    ).not.toThrow();
  });
  it('names both paths when a shape, a key or a kind differs', () => {
    const bad = (other: unknown, msg: string) => {
      let err: unknown;
      try {
        checkSameTree('op', ref, 'params', other, 'grads');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(FoxgateError);
      expect((err as Error).message).toBe(msg);
    };
    bad(
      { layers: [{ w: t([0, 0, 0]) }], blocks: new Map([['a', t([0])]]), step: 1 },
      'op: grads.layers[0].w has shape [3] but params.layers[0].w has [2]',
    );
    bad(
      { layers: [{ w: t([0, 0]) }], blocks: new Map(), step: 1 },
      'op: grads.blocks.get("a") is missing but params.blocks.get("a") is a Tensor',
    );
    bad(
      { layers: { w: t([0, 0]) }, blocks: new Map([['a', t([0])]]), step: 1 },
      'op: grads.layers is a record but params.layers is an array',
    );
    bad(
      { layers: [{ w: t([0, 0]) }], blocks: new Map([['a', t([0])]]), step: 1, extra: 2 },
      'op: grads.extra is a number but params.extra is missing',
    );
  });
});

describe('zipTree', () => {
  it('maps several trees leaf by leaf, hands each leaf its path and copies other leaves from the chosen tree', async () => {
    const a = { w: [t([1, 2]), t([3])], m: new Map([['k', t([4])]]), step: 1 };
    const b = { w: [t([10, 20]), t([30])], m: new Map([['k', t([40])]]), step: 2 };
    const seen: string[] = [];
    const [sum, first] = zipTree([a, b], [1, 0], ([x, y], path) => {
      seen.push(dottedPath(path));
      return [x.add(y), x];
    }) as [typeof a, typeof a];
    expect(seen).toEqual(['w.0', 'w.1', 'm.k']);
    expect(await sum.w[0].data()).toEqual(new Float32Array([11, 22]));
    expect(await sum.w[1].data()).toEqual(new Float32Array([33]));
    expect(await (sum.m.get('k') as ReturnType<typeof t>).data()).toEqual(new Float32Array([44]));
    expect(sum.m).toBeInstanceOf(Map);
    expect(sum.step).toBe(2);
    expect(first.step).toBe(1);
    expect(first.w[0]).toBe(a.w[0]);
  });
});
