import { describe, expect, it } from 'vitest';
import { isTensor, tensor } from '../src/index.js';

describe('isTensor', () => {
  it('is true for tensors and for objects carrying the brand (another copy of the package), false otherwise', () => {
    const t = tensor([1, 2]);
    expect(isTensor(t)).toBe(true);
    expect(isTensor({ __isFoxgateTensor: true })).toBe(true);
    for (const x of [null, undefined, 0, 'tensor', [1, 2], { __isFoxgateTensor: 'yes' }, { shape: [2], dtype: 'float32' }]) {
      expect(isTensor(x), JSON.stringify(x)).toBe(false);
    }
    t.dispose();
  });
});
