export { type DataSpec, DEFAULT_RUN, type RunConfig, runConfig } from './config.js';
export { parseDataSpec, type RunData, runData, type TrainLoader } from './data-source.js';
export { openDevice, type RunDevice } from './device.js';
export {
  batchTensors,
  type ContextEval,
  type EvalResult,
  type EvaluateOptions,
  evaluate,
  type PositionBucket,
  type Sample,
  sampleOf,
} from './eval.js';
export {
  type EvalMetrics,
  type StepMetrics,
  type TrainHooks,
  type TrainOptions,
  type TrainResult,
  type TrainStart,
  train,
} from './train.js';
