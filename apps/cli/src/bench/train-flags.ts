import { MODEL_NAMES, type ModelName } from '@foxgate/models';
import { MATMUL_PRECISIONS, type MatmulPrecision } from '@foxgate/tensor';
import { flag } from '../args.js';
import { UsageError } from '../errors.js';

/** The flags of `foxgate bench train` beyond device, preset, context, batch and steps. */
export const TRAIN_FLAGS = {
  model: flag.list({ help: 'train: models', choices: MODEL_NAMES, defaultHint: 'foxPro,transformer' }),
  acp: flag.list({ help: 'train: ACP settings of the FoX models', choices: ['off', 'on'] as const, defaultHint: 'off' }),
  precision: flag.list({ help: 'train, WebGPU: matmul precisions', choices: MATMUL_PRECISIONS, defaultHint: 'highest' }),
  'max-batch': flag.bool({ help: 'train: instead of --batch, double B from 1 while a full step fits, then time that B' }),
  'memory-cap': flag.float({
    help: 'train --max-batch: stop doubling before the peak bytes in use would pass GB gigabytes (default: until a step fails)',
    min: 0,
    minExclusive: true,
    valueName: 'GB',
  }),
  'save-step0': flag.string({
    help: 'train: write DIR/<model>-<preset>/ (initial weights, the token batch, the step-0 loss) for bench/torch/train_bench.py',
    valueName: 'DIR',
  }),
  'profile-detail': flag.bool({
    help: 'train, WebGPU: the profiled step in --json by kernel detail (a matmul per shape, layouts and tiles; 40 kernels) instead of by name',
  }),
};

/** What the train flags hand to `benchTrain`. */
export interface TrainFlagOptions {
  models?: ModelName[];
  acp?: boolean[];
  precisions?: MatmulPrecision[];
  maxBatch?: boolean;
  memoryCap?: number;
  saveStep0?: string;
  profileDetail?: boolean;
}

interface TrainFlagValues {
  model?: ModelName[];
  acp?: ('off' | 'on')[];
  precision?: MatmulPrecision[];
  maxBatch: boolean;
  memoryCap?: number;
  saveStep0?: string;
  profileDetail: boolean;
  batch?: number;
}

const NAMES: [keyof TrainFlagValues, string][] = [
  ['model', 'model'],
  ['acp', 'acp'],
  ['precision', 'precision'],
  ['maxBatch', 'max-batch'],
  ['memoryCap', 'memory-cap'],
  ['saveStep0', 'save-step0'],
  ['profileDetail', 'profile-detail'],
];

/** One-line usage errors: the train flags with another suite, `--memory-cap` without `--max-batch`, both batch flags. */
export function checkTrainFlags(flags: TrainFlagValues, suites: readonly string[]): void {
  for (const [key, name] of NAMES) {
    // boolean flags count when set, the others when given
    const v = flags[key];
    const given = typeof v === 'boolean' ? v : v !== undefined;
    const other = given && suites.find((n) => n !== 'train');
    if (other) throw new UsageError(`bench: --${name} applies to the train suite only, not '${other}'`);
  }
  if (flags.memoryCap !== undefined && !flags.maxBatch) throw new UsageError('bench: --memory-cap applies with --max-batch only');
  if (flags.maxBatch && flags.batch !== undefined) throw new UsageError('bench: give --batch N or --max-batch, not both');
}

export function trainFlagOptions(flags: TrainFlagValues): TrainFlagOptions {
  return {
    models: flags.model && [...new Set(flags.model)],
    acp: flags.acp && [...new Set(flags.acp)].map((a) => a === 'on'),
    precisions: flags.precision && [...new Set(flags.precision)],
    maxBatch: flags.maxBatch,
    memoryCap: flags.memoryCap !== undefined ? flags.memoryCap * 1e9 : undefined,
    saveStep0: flags.saveStep0,
    profileDetail: flags.profileDetail,
  };
}
