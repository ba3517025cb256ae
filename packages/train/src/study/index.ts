export {
  analyseStudy,
  type BucketBest,
  type BucketEntry,
  type CellLosses,
  type Comparison,
  type ComparisonEntry,
  type ComparisonGroup,
  type ExtrapolationEntry,
  type GridEntry,
  type OracleResult,
  perSampleOracle,
  type StudyAnalysis,
  type TestOracleResult,
  type TrainCurveEntry,
} from './analyse.js';
export {
  type CellEvaluation,
  type ContextLosses,
  type EvaluateContextsOptions,
  evaluateDialogContexts,
  type TestSamples,
  trimBatch,
} from './cell-eval.js';
export {
  bucketLabel,
  cellName,
  contextKey,
  contextRank,
  DEFAULT_HISTORY_BUCKETS,
  type DialogContext,
  type DialogStudyOptions,
  type HistoryBucket,
  type ResolvedStudyOptions,
  resolveStudyOptions,
  sortContexts,
} from './config.js';
export { studyMarkdown } from './markdown.js';
export { runDialogStudy, type StudyCell, type StudyHooks, type StudyResults, type StudyRun } from './run.js';
export { formatDailyDialog, writeDailyDialogSubset } from './subset.js';
