import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MODEL_NAMES, PRESET_NAMES } from '@foxgate/models';
import { DEFAULT_RUN, type EvalResult, type TrainResult, train } from '@foxgate/train';
import { defineCommand, flag, outputFlags } from '../args.js';
import { UsageError } from '../errors.js';
import { writeFileAtomic } from '../files.js';
import { onInterrupt } from '../interrupt.js';
import { type Progress, progress } from '../progress.js';
import { renderReport } from '../report/html.js';
import { loadRun } from '../report/run.js';
import { checkNewRun } from './run-folder.js';
import { summaryLines } from './train-summary.js';

function readConfigFile(path: string): Record<string, unknown> {
  if (!existsSync(path)) throw new UsageError(`train: --config ${path}: no such file`);
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UsageError(`train: --config ${path}: not valid JSON (${(e as Error).message})`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new UsageError(`train: --config ${path}: must hold a JSON object`);
  return v as Record<string, unknown>;
}

function stamp(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
}

/** Writes the run's report.html; returns its path (or null with the reason on stderr). */
export function writeReport(dir: string): string {
  const path = join(dir, 'report.html');
  writeFileAtomic(path, renderReport(loadRun(dir)).html);
  return path;
}

/** `foxgate train`: the built-in default (a tiny FoX-Pro on synthetic MQAR with ACP) or any run. */
export const trainCommand = defineCommand(
  {
    name: 'train',
    summary: 'train a model at a context length (default: tiny FoX-Pro on synthetic MQAR, ACP on)',
    flags: {
      config: flag.file({ help: 'a JSON file of run settings (flags override it)' }),
      model: flag.enum(MODEL_NAMES, { help: 'model family', defaultHint: DEFAULT_RUN.model.model }),
      preset: flag.enum(PRESET_NAMES, { help: 'model size', defaultHint: DEFAULT_RUN.model.preset }),
      data: flag.string({
        help: 'synthetic:mqar|needle|dialog, text:PATH (file or folder), dailydialog:DIR, jsonl:FILE',
        defaultHint: DEFAULT_RUN.data,
      }),
      context: flag.positiveInt({
        help: 'training context length T (tokens per row)',
        max: 1 << 20,
        defaultHint: String(DEFAULT_RUN.context),
      }),
      'dialog-context': flag.string({ help: "dialog data: past utterances a response sees (N or 'all')", defaultHint: 'all' }),
      steps: flag.nonNegativeInt({ help: 'optimizer steps', max: 1e9, defaultHint: String(DEFAULT_RUN.steps) }),
      batch: flag.positiveInt({ help: 'rows per step', max: 1 << 16, defaultHint: String(DEFAULT_RUN.batch) }),
      lr: flag.float({
        help: 'peak learning rate (warmup, then cosine)',
        min: 0,
        minExclusive: true,
        max: 10,
        defaultHint: String(DEFAULT_RUN.lr),
      }),
      device: flag.enum(['cpu', 'webgpu', 'auto'] as const, {
        help: 'where to train (auto: a hardware GPU, else the CPU)',
        defaultHint: 'auto',
      }),
      acp: flag.bool({ help: 'Adaptive Computation Pruning on (the default for FoX models)' }),
      'no-acp': flag.bool({ help: 'ACP off' }),
      seed: flag.nonNegativeInt({ help: 'seed of the weights and the data order', max: 2 ** 31 - 1, defaultHint: '0' }),
      'eval-every': flag.nonNegativeInt({
        help: 'validate every N steps (0: at the end only)',
        max: 1e9,
        defaultHint: String(DEFAULT_RUN.evalEvery),
      }),
      'checkpoint-every': flag.nonNegativeInt({
        help: 'checkpoint every N steps (0: at the end only)',
        max: 1e9,
        defaultHint: String(DEFAULT_RUN.checkpointEvery),
      }),
      out: flag.string({ help: 'the run folder', defaultHint: 'runs/<model>-<date>' }),
      resume: flag.string({ help: 'continue the run in this folder from its last checkpoint' }),
      'init-from': flag.string({
        help: "start from a checkpoint's weights (a run folder, its checkpoint/ or a Hugging Face folder): the same model (fine-tune), or --model sparsek from transformer/transformerPro (score_proj fresh); sizes come from the checkpoint",
      }),
      ...outputFlags,
    },
    notes:
      'The run folder gets config.json (effective settings), metrics.jsonl, checkpoint/, eval.json and report.html.\nCtrl-C saves a checkpoint and prints the command that resumes the run.',
    examples: [
      'foxgate train',
      'foxgate train --model fox --data text:../shared/data/tinyshakespeare/input.txt --context 256 --steps 500',
      'foxgate train --resume runs/demo --steps 600',
      'foxgate train --model sparsek --init-from runs/transformer-demo --steps 200',
    ],
  },
  async ({ flags }) => {
    if (flags.acp && flags.noAcp) throw new UsageError('train: --acp and --no-acp contradict each other');
    if (flags.out && flags.resume) throw new UsageError('train: give --out or --resume, not both (a resumed run stays in its folder)');
    if (flags.initFrom && flags.resume)
      throw new UsageError('train: give --init-from or --resume, not both (a resumed run continues from its own checkpoint)');
    const o: Record<string, unknown> = flags.config ? readConfigFile(flags.config) : {};
    const model: Record<string, unknown> = { ...((o.model as object) ?? {}) };
    if (flags.model) model.model = flags.model;
    if (flags.preset) model.preset = flags.preset;
    if (Object.keys(model).length) o.model = model;
    const set = (k: string, v: unknown) => {
      if (v !== undefined) o[k] = v;
    };
    set('data', flags.data);
    set('context', flags.context);
    set('steps', flags.steps);
    set('batch', flags.batch);
    set('lr', flags.lr);
    set('device', flags.device);
    set('seed', flags.seed);
    set('evalEvery', flags.evalEvery);
    set('checkpointEvery', flags.checkpointEvery);
    set('initFrom', flags.initFrom);
    if (flags.acp) o.acp = true;
    if (flags.noAcp) o.acp = false;
    if (flags.dialogContext !== undefined) {
      const v = flags.dialogContext;
      if (v !== 'all' && !/^\d+$/.test(v)) throw new UsageError(`train: --dialog-context must be an integer >= 0 or 'all', got '${v}'`);
      o.dialogContext = v === 'all' ? 'all' : Number(v);
    }
    const name = (model.model as string) ?? (flags.initFrom ? 'finetune' : DEFAULT_RUN.model.model);
    const out = flags.resume ?? flags.out ?? join('runs', `${name}-${stamp()}`);
    if (flags.resume) {
      for (const k of ['model', 'data', 'context', 'batch', 'lr', 'seed'] as const) {
        if (flags[k] !== undefined)
          throw new UsageError(`train: --${k} cannot change a resumed run (only --steps, --eval-every, --checkpoint-every, --device)`);
      }
    }

    if (!flags.resume) checkNewRun(o); // bad settings and a context longer than the data: one line, before the work
    const quiet = flags.quiet || flags.json;
    const ui: { bar: Progress | null } = { bar: null };
    let stop = false;
    const dispose = onInterrupt(
      () => {
        stop = true;
        return new Promise<void>((resolveStop) => {
          stopWaiters.push(resolveStop);
        });
      },
      { exitCode: 130, message: 'foxgate: stopping after this step (Ctrl-C again to quit at once)…' },
    );
    const stopWaiters: (() => void)[] = [];
    let result: TrainResult;
    try {
      result = await train(o, {
        out,
        resume: Boolean(flags.resume),
        hooks: {
          onStart: (s) => {
            const lines = [
              `foxgate train: ${s.modelConfig.model} (${(s.params / 1e6).toFixed(2)}M parameters, ${s.modelConfig.num_hidden_layers} layers, hidden ${s.modelConfig.hidden_size}, ${s.modelConfig.num_heads} heads)`,
              `  data: ${s.data}`,
              `  context ${s.config.context}, batch ${s.config.batch}, ${s.config.steps} steps (${s.tokensPerStep} tokens each), lr ${s.config.lr}, ACP ${s.config.acp ? 'on' : 'off'}, device ${s.device}`,
              `  run folder: ${out}${s.fromStep ? ` (resuming at step ${s.fromStep})` : ''}`,
              ...(s.config.initFrom && !s.fromStep
                ? [`  weights from: ${s.config.initFrom} (every tensor by name; new ones from the seed)`]
                : []),
              `  settings: ${Object.entries(s.config)
                .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
                .join(' ')}`,
            ];
            if (!quiet) console.log(lines.join('\n'));
            ui.bar = progress({ total: s.config.steps, label: 'train', quiet: flags.quiet, json: flags.json });
            if (s.fromStep) ui.bar.update(s.fromStep);
          },
          onStep: (m) => ui.bar?.update(m.step, { loss: m.loss, tokensPerSecond: m.tokensPerSecond }),
          onEval: (m) =>
            ui.bar?.log(
              `  eval @ step ${m.step}: loss ${m.loss.toFixed(4)}${m.accuracy !== undefined ? `, accuracy ${(100 * m.accuracy).toFixed(1)}%` : ''}${m.perplexity !== undefined ? `, perplexity ${m.perplexity.toFixed(2)}` : ''}`,
            ),
          shouldStop: () => stop,
        },
      });
    } finally {
      ui.bar?.done();
    }
    if (result.stopped) {
      console.error(`foxgate: stopped at step ${result.step}; checkpoint saved. Resume with: foxgate train --resume ${out}`);
      for (const w of stopWaiters) w();
      return 130;
    }
    dispose();
    const report = writeReport(out);
    if (flags.json) {
      console.log(
        JSON.stringify({
          out,
          report,
          step: result.step,
          tokens: result.tokens,
          loss: result.loss,
          seconds: result.seconds,
          device: result.device,
          eval: result.eval,
        }),
      );
      return 0;
    }
    if (!flags.quiet) for (const l of summaryLines(result, result.eval as EvalResult, out)) console.log(l);
    console.log(`report: ${report}`);
    return 0;
  },
);
