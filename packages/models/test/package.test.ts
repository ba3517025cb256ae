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
    const layers = [
      'initLinear',
      'linear',
      'initSwiGLU',
      'swiglu',
      'mlpHidden',
      'initRMSNorm',
      'rmsNormLayer',
      'headRmsNorm',
      'initEmbedding',
      'embedding',
      'rope',
      'ropeTables',
      'initShiftLinear',
      'shiftLinear',
    ];
    for (const name of layers) expect(typeof (models as Record<string, unknown>)[name], name).toBe('function');
    expect(models.RMS_NORM_EPS).toBe(1e-6);
    expect(models.ROPE_BASE).toBe(500000);
  });

  it('exports the model API', () => {
    const fns = [
      'attentionLayer',
      'modelConfig',
      'headDim',
      'intermediateSize',
      'officialConfigJson',
      'createModel',
      'transformer',
      'fox',
      'foxPro',
      'transformerPro',
      'countParams',
      'paramShapes',
      'checkParams',
      'paramProblems',
    ];
    for (const name of fns) expect(typeof (models as Record<string, unknown>)[name], name).toBe('function');
    expect(models.QK_NORM_EPS).toBe(1e-5);
    expect(models.DOC_RESET_LOGF).toBe(-100);
    expect([...models.MODEL_NAMES]).toEqual(['transformer', 'fox', 'foxPro', 'transformerPro', 'sparsek']);
    expect(models.PRESET_NAMES.length).toBeGreaterThan(0);
    for (const name of models.PRESET_NAMES) expect(models.PRESETS[name], name).toBeTypeOf('object');
    expect(models.MODEL_DEFAULTS).toBeTypeOf('object');
  });

  it('keeps the unchecked helpers internal', () => {
    for (const name of ['applyLinear', 'checkLinear', 'checkLinearParams', 'checkTensor', 'checkDim', 'docResetOf']) {
      expect(name in models, name).toBe(false);
    }
  });
});
