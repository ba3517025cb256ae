/**
 * @foxgate/models — the FoX paper's models (Transformer++, FoX, FoX-Pro, Transformer-Pro) and
 * their layers as pure functions of parameter trees: `initX(key, …)` returns a plain record of
 * tensors, `x(params, input)` applies it. Parameter trees flatten to the official state_dict
 * names, so checkpoints are safetensors files that the official code and ours read alike.
 */

export const PACKAGE = '@foxgate/models';

export {
  type AttentionCacheHook,
  type AttentionParams,
  attentionLayer,
  DOC_RESET_LOGF,
  type LayerContext,
  QK_NORM_EPS,
  SPARSEK_POSITION_EPS,
} from './attention-layer.js';
export {
  cleanCheckpointTemps,
  type LoadCheckpointOptions,
  type LoadedCheckpoint,
  loadCheckpoint,
  type SaveCheckpointOptions,
  saveCheckpoint,
} from './checkpoint.js';
export {
  type ConfigInput,
  headDim,
  intermediateSize,
  MODEL_DEFAULTS,
  MODEL_NAMES,
  type ModelConfig,
  type ModelName,
  modelConfig,
  officialConfigJson,
  PRESET_NAMES,
  PRESETS,
  type PresetName,
  SPARSEK_FIELDS,
} from './config.js';
// generation with a KV cache (issue 16)
export { type BenchGenerateOptions, type BenchGenerateRow, benchGenerate, trainedLikeGates } from './generate/bench.js';
export { CACHE_CHUNK, MASKED_SCORE } from './generate/cache.js';
export { type CacheStats, createDecoder, type Decoder, type DecoderOptions } from './generate/decoder.js';
export { acpBounds, acpThreshold } from './generate/evict.js';
export { type GenerateOptions, type GenerateResult, type GenerateStats, generate } from './generate/generate.js';
export { argmaxOf, type SamplingOptions, sampleToken, sampleUniform, samplingDistribution } from './generate/sampling.js';
export { type EmbeddingParams, embedding, initEmbedding } from './layers/embedding.js';
export { type InitOptions, initLinear, type LinearInitOptions, type LinearParams, linear } from './layers/linear.js';
export {
  type LinearCrossEntropyOptions,
  LOSS_CHUNK_BYTES,
  linearCrossEntropy,
} from './layers/linear-cross-entropy.js';
export { headRmsNorm, initRMSNorm, RMS_NORM_EPS, type RMSNormParams, rmsNormLayer } from './layers/norm.js';
export { ROPE_BASE, type RopeOptions, type RopeTables, rope, ropeTables, ropeTableTensors } from './layers/rope.js';
export { initShiftLinear, type ShiftLinearParams, shiftLinear } from './layers/shift.js';
export { initSwiGLU, mlpHidden, type SwiGLUInitOptions, type SwiGLUParams, swiglu } from './layers/swiglu.js';
export {
  createModel,
  type ForwardOptions,
  type ForwardStats,
  type InitModelOptions,
  type LayerParams,
  type LossOptions,
  type Model,
  type ModelParams,
} from './model.js';
export { fox, foxPro, sparsek, transformer, transformerPro } from './models.js';
export { countParams, paramShapes } from './shapes.js';
export { checkParams, paramProblems } from './tree-check.js';
