export { type Batch, type BatchLoader, IGNORE_INDEX } from './batch.js';
export {
  countDialogSamples,
  DEFAULT_MAX_UTTERANCE_TOKENS,
  type DialogBatch,
  type DialogBatchOptions,
  type DialogEvalOptions,
  type DialogLoader,
  type DialogLoaderState,
  type DialogSample,
  dialogBatches,
  dialogEvalBatches,
  dialogSequence,
} from './dialog-batches.js';
export { dialogPerplexity, sampleMeanLosses, samplePerplexity } from './dialog-ppl.js';
export {
  type DailyDialogSplit,
  type Dialog,
  loadDailyDialog,
  parseDailyDialog,
  parseJsonlDialogs,
  readDailyDialog,
  readJsonlDialogs,
} from './dialogs.js';
export {
  type LmBatchOptions,
  type LmDocument,
  type LmEvalOptions,
  type LmLoader,
  type LmLoaderState,
  lmBatches,
  lmEvalBatches,
} from './lm.js';
export { type Split, type SplitOptions, splitDocuments } from './split.js';
export { createTask, TASK_NAMES } from './synthetic/create.js';
export type { DialogTaskOptions, ResolvedDialogTaskOptions } from './synthetic/dialog.js';
export type { MqarOptions, ResolvedMqarOptions } from './synthetic/mqar.js';
export type { NeedleOptions, ResolvedNeedleOptions } from './synthetic/needle.js';
export type { Accuracy, RowInfo, SyntheticBatch, SyntheticTask, TaskLoader, TaskLoaderState, TaskName } from './synthetic/task.js';
export { DEFAULT_SEGMENT_BYTES, openTextCorpus, readDocument, type TextCorpus, type TextCorpusOptions, type TextDocument } from './text.js';
