import { tensor } from '@foxgate/tensor';
import { describe, expect, it } from 'vitest';
import { flattenTree, unflattenTree } from '../src/index.js';

const t = (v: number) => tensor([v], [1], { backend: 'cpu' });

describe('flattenTree / unflattenTree', () => {
  it('dotted names from records and arrays, in tree order, and back', () => {
    const a = t(1);
    const b = t(2);
    const c = t(3);
    const tree = { model: { layers: [{ w: a }, { w: b }], norm: { weight: c } }, step: 3 };
    const flat = flattenTree(tree);
    expect([...flat.keys()]).toEqual(['model.layers.0.w', 'model.layers.1.w', 'model.norm.weight']);
    expect(flat.get('model.layers.1.w')).toBe(b);
    const back = unflattenTree<{ model: { layers: { w: unknown }[]; norm: { weight: unknown } } }>(flat);
    expect(Array.isArray(back.model.layers)).toBe(true);
    expect(back.model.layers[1].w).toBe(b);
    expect(back.model.norm.weight).toBe(c);
  });

  it('keys 0..n-1 become arrays, other numeric keys stay records', () => {
    const back = unflattenTree<Record<string, unknown>>([
      ['x.1', t(1)],
      ['x.0', t(2)],
      ['y.1', t(3)],
    ]);
    expect(Array.isArray(back.x)).toBe(true);
    expect(Array.isArray(back.y)).toBe(false);
  });

  it('refuses names that cannot round-trip', () => {
    expect(() => flattenTree({ 'a.b': t(1) })).toThrow(/key 'a.b' at '<root>' is empty or has a dot/);
    expect(() => flattenTree(new Map([['a', t(1)]]))).toThrow(/a Map at '<root>'/);
    expect(() =>
      unflattenTree([
        ['a', t(1)],
        ['a.b', t(2)],
      ]),
    ).toThrow(/'a' is both a tensor and a prefix of 'a.b'/);
    expect(() => unflattenTree([['a..b', t(1)]])).toThrow(/bad name 'a..b'/);
  });
});
