import { loadCheckpoint } from '@foxgate/models';
import { dispose } from '@foxgate/tensor';
import { type EvalResult, evaluate, openDevice, type RunConfig, runConfig, runData } from '@foxgate/train';
import { defineCommand, flag, outputFlags } from '../args.js';
import { UsageError } from '../errors.js';
import { writeFileAtomic } from '../files.js';
import { findCheckpoint, hasValidationRows } from './run-folder.js';
import { accuracyLines, pct, perPositionTable } from './train-summary.js';

/** The evaluation's settings: the run's (when DIR is a run folder) with the flags over them. */
function evalConfig(
  run: RunConfig | null,
  f: { data?: string; context?: number; tokenizer?: 'byte' | 'gpt2'; rows?: number; acp: boolean; noAcp: boolean },
  dir: string,
): RunConfig {
  if (!run && f.data === undefined)
    throw new UsageError(
      `eval: --checkpoint ${dir} is a checkpoint without its run folder: give --data (and --context, --tokenizer when they differ from the defaults)`,
    );
  const o: Record<string, unknown> = run ? { ...run } : {};
  if (f.data !== undefined && f.data !== run?.data) {
    o.data = f.data;
    o.task = {}; // the run's task options belong to its own data
  }
  if (f.context !== undefined) o.context = f.context;
  if (f.tokenizer !== undefined) o.tokenizer = f.tokenizer;
  if (f.rows !== undefined) o.evalRows = f.rows;
  if (f.acp) o.acp = true;
  if (f.noAcp) o.acp = false;
  if (!run && !f.acp) o.acp = false;
  return runConfig(o, 'eval');
}

/** One line per number of an evaluation, for people. */
export function evalLines(e: EvalResult, missing: number[]): string[] {
  const lines = [`loss ${e.loss.toFixed(4)} over ${e.targets} targets at context ${e.context}`];
  for (const x of e.extrapolation)
    lines.push(`  at ${x.factor}× the context (T=${x.context}): loss ${x.loss.toFixed(4)} over ${x.targets} targets`);
  for (const f of missing) lines.push(`  at ${f}× the context (T=${f * e.context}): no validation rows of that length`);
  lines.push('per-position loss:', ...perPositionTable(e));
  lines.push(...accuracyLines(e));
  if (e.acp) lines.push(`ACP pruned ${e.acp.prunedFraction.map((v, i) => `layer ${i} ${pct(v)}`).join(', ')} of the 64×64 attention tiles`);
  return lines;
}

/** `foxgate eval`: a checkpoint's loss, per-position loss, accuracy or perplexity on validation data. */
export const evalCommand = defineCommand(
  {
    name: 'eval',
    summary: "evaluates a checkpoint: loss, per-position loss, recall accuracy or dialog perplexity (the run's data by default)",
    flags: {
      checkpoint: flag.file({ help: 'a run folder of foxgate train, or a checkpoint folder (then --data is needed)', required: true }),
      data: flag.string({
        help: "synthetic:mqar|needle|dialog, text:PATH, dailydialog:DIR, jsonl:FILE (default: the run's)",
      }),
      context: flag.positiveInt({ help: 'evaluation context length T', max: 1 << 20, defaultHint: "the run's, else 32" }),
      extrapolate: flag.intList({
        help: "also evaluate at these multiples of the context (length extrapolation); 'none' for none",
        min: 2,
        max: 64,
        keywords: ['none'],
        defaultHint: "the run's, else none",
      }),
      rows: flag.positiveInt({ help: 'validation rows per context', max: 1 << 20, defaultHint: "the run's evalRows, else 64" }),
      tokenizer: flag.enum(['byte', 'gpt2'] as const, { help: 'tokenizer of text and dialog data', defaultHint: "the run's, else byte" }),
      acp: flag.bool({ help: 'Adaptive Computation Pruning on (default: as the run trained; off for a bare checkpoint)' }),
      'no-acp': flag.bool({ help: 'ACP off' }),
      device: flag.enum(['cpu', 'webgpu', 'auto'] as const, {
        help: 'where to evaluate (auto: a hardware GPU, else the CPU)',
        default: 'auto',
      }),
      out: flag.file({ help: "also write the evaluation to PATH as JSON (RUN/eval.json is what 'foxgate report' plots)", writable: true }),
      ...outputFlags,
    },
    notes:
      'A vocabulary that does not match the checkpoint (another tokenizer or task) is an error. Extrapolation\nfactors whose length the data cannot fill are listed and skipped.',
    examples: [
      'foxgate eval --checkpoint runs/demo',
      'foxgate eval --checkpoint runs/demo --extrapolate 2,4 --json',
      'foxgate eval --checkpoint runs/shakespeare/checkpoint --data text:input.txt --context 256',
    ],
  },
  async ({ flags }) => {
    if (flags.acp && flags.noAcp) throw new UsageError('eval: --acp and --no-acp contradict each other');
    const folder = findCheckpoint('eval', flags.checkpoint);
    const cfg = evalConfig(folder.run, flags, flags.checkpoint);
    const factors = flags.extrapolate ? (flags.extrapolate.filter((x) => x !== 'none') as number[]) : folder.run ? cfg.extrapolate : [];
    if (flags.extrapolate?.includes('none') && flags.extrapolate.length > 1)
      throw new UsageError("eval: --extrapolate 'none' cannot be combined with factors");
    const data = runData(cfg);
    const device = await openDevice(flags.device);
    let e: EvalResult;
    let described: string;
    try {
      const ck = await loadCheckpoint(folder.checkpointDir, { backend: device.backend });
      try {
        const V = ck.config.vocab_size;
        if (V !== data.vocabSize)
          throw new UsageError(
            `eval: the checkpoint's vocabulary (${V} tokens) does not match the data's (${data.vocabSize}: ${data.kind === 'task' ? `the ${data.task?.name} task` : `${cfg.tokenizer} tokens`}); give the data and --tokenizer it was trained with`,
          );
        if (!hasValidationRows(data, cfg.context, cfg.evalRows))
          throw new UsageError(`eval: --context ${cfg.context}: the validation data (${data.describe}) holds no row of that length`);
        const fox = ck.config.fgate_type !== 'none';
        e = await evaluate(ck.model, ck.params, data, {
          context: cfg.context,
          rows: cfg.evalRows,
          acp: cfg.acp && fox,
          extrapolate: factors,
          backend: device.backend,
        });
        described = `${ck.config.model} (${(ck.model.countParams() / 1e6).toFixed(2)}M parameters)`;
      } finally {
        dispose(ck.params);
      }
    } finally {
      await device.release();
    }
    const missing = factors.filter((f) => !e.extrapolation.some((x) => x.factor === f));
    if (flags.out) writeFileAtomic(flags.out, `${JSON.stringify(e, null, 2)}\n`);
    if (flags.json) {
      console.log(
        JSON.stringify({ checkpoint: folder.checkpointDir, data: data.describe, device: device.describe, ...e, missingFactors: missing }),
      );
      return 0;
    }
    if (!flags.quiet)
      console.log(`foxgate eval: ${described} from ${folder.checkpointDir}\n  data: ${data.describe}\n  device: ${device.describe}`);
    for (const l of evalLines(e, missing)) console.log(l);
    if (flags.out && !flags.quiet) console.log(`wrote ${flags.out}`);
    return 0;
  },
);
