import { join } from 'node:path';
import { MODEL_NAMES, PRESET_NAMES } from '@foxgate/models';
import { type DialogContext, runDialogStudy } from '@foxgate/train';
import { defineCommand, flag, outputFlags } from '../args.js';
import { onInterrupt } from '../interrupt.js';
import { type Progress, progress } from '../progress.js';
import { writeStudyFiles } from '../report/study-report.js';

const contexts = (help: string, defaultHint?: string) =>
  flag.intList({ help, min: 0, max: 10_000, keywords: ['all'] as const, ...(defaultHint ? { defaultHint } : {}) });

/** `foxgate dialog-study`: the context-length study on DailyDialog, one model per (model, training N). */
export const dialogStudyCommand = defineCommand(
  {
    name: 'dialog-study',
    summary: 'the dialog context-length study on DailyDialog: a model per (model, training N), PPL at every test N',
    flags: {
      data: flag.string({ help: 'the DailyDialog folder (dialogues_train/validation/test.txt)', required: true, valueName: 'DIR' }),
      model: flag.list({ help: 'model families', choices: MODEL_NAMES, default: ['transformer', 'foxPro'] }),
      'train-context': contexts('training N: previous utterances given as context', '1,2,3,5,10,all'),
      'test-context': contexts('test N (each cell is also tested at its own N)', 'the training N'),
      preset: flag.enum(PRESET_NAMES, { help: 'model size', default: 'tiny' }),
      hidden: flag.positiveInt({ help: 'hidden size over the preset', max: 65536 }),
      layers: flag.positiveInt({ help: 'layers over the preset', max: 1024 }),
      heads: flag.positiveInt({ help: 'heads over the preset', max: 1024 }),
      steps: flag.positiveInt({ help: 'optimizer steps per cell', max: 1e9, default: 300 }),
      batch: flag.positiveInt({ help: 'rows per step', max: 1 << 16, default: 16 }),
      context: flag.positiveInt({ help: 'tokens per row T (the token budget per cell is steps × batch × T)', max: 1 << 20, default: 512 }),
      lr: flag.float({ help: 'peak learning rate', min: 0, minExclusive: true, max: 10, default: 3e-3 }),
      seed: flag.nonNegativeInt({ help: 'seed of the weights and the data order (the same for every cell)', max: 2 ** 31 - 1, default: 0 }),
      tokenizer: flag.enum(['byte', 'gpt2'] as const, { help: 'tokenizer', default: 'byte' }),
      'max-dialogs': flag.positiveInt({ help: 'use the first N training (and validation) dialogs only', max: 1e9 }),
      'max-test-dialogs': flag.positiveInt({ help: 'use the first N test dialogs only', max: 1e9, defaultHint: '--max-dialogs' }),
      'eval-batch': flag.positiveInt({ help: 'rows per evaluation batch', max: 1 << 16, default: 32 }),
      'checkpoint-every': flag.positiveInt({ help: 'checkpoint a cell every N steps', max: 1e9, default: 50 }),
      device: flag.enum(['cpu', 'webgpu', 'auto'] as const, { help: 'where to train and evaluate', default: 'auto' }),
      out: flag.string({ help: 'the study folder', default: 'runs/dialog-study' }),
      ...outputFlags,
    },
    notes: [
      'Every utterance but the first of a dialog is a target; its row holds the last N previous utterances (each cut to',
      '49 tokens + an end token) with speaker tokens; the loss falls on the response only. A sample’s PPL is',
      'exp(mean token loss over the response); the reported PPL is exp(mean over samples of those means).',
      'OUT gets cells/<model>-n<N>/ (a train run + test-eval.json each), results.json, results.md, report.html and',
      'plots: grid-<model>.svg, ppl-by-train-n.svg, buckets-<model>.svg, oracle-<model>.svg, ratio-<b>-vs-<a>.svg.',
      'Run the same command again to continue an interrupted study: finished cells are not retrained.',
    ].join('\n'),
    examples: [
      'foxgate dialog-study --data ../shared/data/dailydialog --model transformer,foxPro --train-context 1,2,3,5,10,all --test-context 1,2,3,5,10,all',
      'foxgate dialog-study --data ../shared/data/dailydialog --train-context 1,3,all --steps 200 --max-dialogs 2000 --device cpu --out runs/dd-small',
    ],
  },
  async ({ flags }) => {
    const trainContexts = (flags.trainContext ?? [1, 2, 3, 5, 10, 'all']) as DialogContext[];
    const modelFields: Record<string, unknown> = {};
    if (flags.hidden) modelFields.hidden_size = flags.hidden;
    if (flags.layers) modelFields.num_hidden_layers = flags.layers;
    if (flags.heads) modelFields.num_heads = flags.heads;
    const quiet = flags.quiet || flags.json;
    const say = (s: string) => {
      if (!quiet) ui.bar ? ui.bar.log(s) : console.log(s);
      else if (flags.json && !flags.quiet) console.error(s);
    };
    const ui: { bar: Progress | null } = { bar: null };
    let stop = false;
    const stopWaiters: (() => void)[] = [];
    const dispose = onInterrupt(
      () => {
        stop = true;
        return new Promise<void>((r) => stopWaiters.push(r));
      },
      { exitCode: 130, message: 'foxgate: stopping after this step (Ctrl-C again to quit at once)…' },
    );
    const t0 = performance.now();
    let run: Awaited<ReturnType<typeof runDialogStudy>>;
    try {
      run = await runDialogStudy(
        {
          data: flags.data,
          models: flags.model,
          trainContexts,
          testContexts: (flags.testContext ?? trainContexts) as DialogContext[],
          preset: flags.preset,
          modelFields,
          steps: flags.steps,
          batch: flags.batch,
          context: flags.context,
          lr: flags.lr,
          seed: flags.seed,
          tokenizer: flags.tokenizer,
          device: flags.device,
          maxDialogs: flags.maxDialogs,
          maxTestDialogs: flags.maxTestDialogs,
          evalBatch: flags.evalBatch,
          checkpointEvery: flags.checkpointEvery,
          out: flags.out,
        },
        {
          onLog: (s) => say(`dialog-study: ${s}`),
          onCellStart: (c, info) => {
            ui.bar?.done();
            say(
              `dialog-study: cell ${c.index}/${c.total} ${c.model} N=${c.trainContext}: ${(info.params / 1e3).toFixed(0)}k parameters, ${info.config.steps} steps × ${info.tokensPerStep} tokens on ${info.device}`,
            );
            ui.bar = progress({ total: info.config.steps, label: `${c.model} N=${c.trainContext}`, quiet: flags.quiet, json: flags.json });
            if (info.fromStep) ui.bar.update(info.fromStep);
          },
          onStep: (m) => ui.bar?.update(m.step, { loss: m.loss, tokensPerSecond: m.tokensPerSecond }),
          shouldStop: () => stop,
        },
      );
    } finally {
      ui.bar?.done();
      ui.bar = null;
    }
    if (run.stopped || !run.results) {
      console.error(`foxgate: dialog-study stopped; run the same command again to continue (finished cells are kept in ${run.out})`);
      for (const w of stopWaiters) w();
      return 130;
    }
    dispose();
    const r = run.results;
    const files = writeStudyFiles(run.out, r);
    const seconds = (performance.now() - t0) / 1000;
    if (flags.json) {
      console.log(
        JSON.stringify({
          out: run.out,
          results: join(run.out, 'results.json'),
          markdown: join(run.out, 'results.md'),
          report: join(run.out, 'report.html'),
          plots: files,
          trained: run.trained,
          evaluated: run.evaluated,
          skipped: run.skipped,
          seconds,
          trainCurve: r.analysis.trainCurve,
          oracle: r.analysis.oracle.map((o) => ({ model: o.model, bestFixed: o.bestFixed, perplexity: o.perplexity, wins: o.wins })),
        }),
      );
      return 0;
    }
    if (!flags.quiet) {
      console.log(
        `dialog study: ${r.cells.length} cells (${run.trained.length} trained now, ${run.evaluated.length} only evaluated, ${run.skipped.length} finished earlier) in ${seconds.toFixed(0)} s`,
      );
      for (const e of r.analysis.trainCurve)
        console.log(
          `  ${e.model.padEnd(14)} N=${String(e.trainContext).padEnd(4)} test PPL ${e.matched.toFixed(3)} (best test N=${e.bestTestContext}: ${e.bestTest.toFixed(3)})`,
        );
      for (const o of r.analysis.oracle)
        console.log(
          `  ${o.model}: oracle PPL ${o.perplexity.toFixed(3)} vs best single N=${o.bestFixed.context} ${o.bestFixed.perplexity.toFixed(3)} (${(100 * o.relativeGain).toFixed(1)}% lower)`,
        );
    }
    console.log(`results: ${join(run.out, 'results.md')} (tables), results.json, report.html, ${files.length} plots`);
    return 0;
  },
);
