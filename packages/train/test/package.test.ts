import { describe, expect, it } from 'vitest';
import { PACKAGE } from '../src/index.js';

describe('@foxgate/train', () => {
  it('is wired into the workspace and resolves its dependencies from source', async () => {
    expect(PACKAGE).toBe('@foxgate/train');
    const tensor = await import('@foxgate/tensor');
    expect(tensor.tensor([1, 2]).shape).toEqual([2]);
  });
});
