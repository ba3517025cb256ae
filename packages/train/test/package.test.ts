import { describe, expect, it } from 'vitest';
import { adamw, defaultDecayMask, PACKAGE } from '../src/index.js';

describe('@foxgate/train', () => {
  it('is wired into the workspace and resolves its dependencies from source', async () => {
    expect(PACKAGE).toBe('@foxgate/train');
    const tensor = await import('@foxgate/tensor');
    expect(tensor.tensor([1, 2]).shape).toEqual([2]);
    const autograd = await import('@foxgate/autograd');
    expect(typeof autograd.valueAndGrad).toBe('function');
  });

  it('exports adamw', () => {
    expect(typeof adamw).toBe('function');
    expect(adamw({ lr: 1e-3 }).options).toEqual({
      lr: 1e-3,
      beta1: 0.9,
      beta2: 0.95,
      eps: 1e-8,
      weightDecay: 0.1,
      decay: defaultDecayMask,
      impl: 'fused',
    });
  });
});
