import { describe, expect, it } from 'vitest';
import * as models from '../src/index.js';

describe('@foxgate/models', () => {
  it('is wired into the workspace and resolves its dependencies from source', async () => {
    expect(models.PACKAGE).toBe('@foxgate/models');
    const tensor = await import('@foxgate/tensor');
    expect(tensor.tensor([1, 2]).shape).toEqual([2]);
    const autograd = await import('@foxgate/autograd');
    expect(typeof autograd.gradcheck).toBe('function');
  });

  it('exports the layer API', () => {
    for (const name of ['initLinear', 'linear', 'initSwiGLU', 'swiglu', 'initRMSNorm', 'rmsNormLayer']) {
      expect(typeof (models as Record<string, unknown>)[name], name).toBe('function');
    }
    expect(models.RMS_NORM_EPS).toBe(1e-6);
  });
});
