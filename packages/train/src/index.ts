/**
 * @foxgate/train — training utilities for foxgate models. So far: the AdamW optimizer over
 * parameter trees.
 */

export const PACKAGE = '@foxgate/train';

export { flattenTree, unflattenTree } from '@foxgate/autograd';
// ---- optimisation: AdamW (fused step), weight-decay mask, state ↔ tensors, clipping, accumulation, schedules, trees
export { type AdamW, type AdamWOptions, type AdamWState, type AdamWUpdateOptions, adamw } from './adamw.js';
export { accumulateGrads, addTrees, scaleTree } from './optim/accumulate.js';
export { type AdamWImpl, type AdamWStepCoefficients, adamwStep } from './optim/adamw-step.js';
export { clipFactor, clipGradNorm, globalNorm } from './optim/clip.js';
export { defaultDecayMask } from './optim/decay.js';
export { constantLr, type TokenSchedule, type WarmupCosineOptions, warmupCosine } from './optim/schedule.js';
export { adamwStateFromTensors, adamwStateTensors } from './optim/state.js';
// ---- end optimisation

// ---- data: tokenizers, text/dialog sources, LM and dialog batching by context length, synthetic tasks, dialog PPL
export * from './data/index.js';
export * from './tokenizers/index.js';
// ---- end data

// ---- trainer: run config, data from a spec, device choice, the training loop, evaluation
export * from './trainer/index.js';
// ---- end trainer

// ---- study: the dialog context-length study (grid of (model, training N) cells, test-N evaluation, analyses)
export * from './study/index.js';
// ---- end study
