export {
  type ArgsSpec,
  type Command,
  type CommandSpec,
  checkAllocation,
  closest,
  defineCommand,
  type Flag,
  type FlagValues,
  flag,
  formatBytes,
  helpText,
  outputFlags,
  type Parsed,
  parseCommand,
} from './args.js';
export type { BenchRow } from './bench/types.js';
export { EXIT, reportError, UsageError } from './errors.js';
export { checkWritableFile, writeFileAtomic } from './files.js';
export { type InterruptOptions, onInterrupt } from './interrupt.js';
export { COMMANDS, main, usage } from './main.js';
export { formatDuration, formatRate, type Progress, type ProgressOptions, type ProgressStats, progress } from './progress.js';
export { type RenderedReport, renderReport } from './report/html.js';
export { loadRun, type RunData } from './report/run.js';
export { bar, sparkline, terminalCharts } from './report/terminal.js';
