/**
 * Runs the dialog context-length study in a folder: trains every (model, training N) cell with
 * the same token budget and seed (OUT/cells/<model>-n<N>/, a `train` run each), evaluates each
 * at every test N on the test split (the cell's test-eval.json), then analyses them all
 * (OUT/results.json, OUT/results.md). Resumable: a cell whose test-eval.json holds every test N
 * is never retrained; one whose training was interrupted resumes from its checkpoint.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createModel, loadCheckpoint } from '@foxgate/models';
import { dispose, fail } from '@foxgate/tensor';
import { countDialogSamples } from '../data/dialog-batches.js';
import { loadDailyDialog } from '../data/dialogs.js';
import { createTokenizer } from '../tokenizers/create.js';
import { openDevice } from '../trainer/device.js';
import { type StepMetrics, type TrainStart, train } from '../trainer/train.js';
import { analyseStudy, type CellLosses, type StudyAnalysis } from './analyse.js';
import { type CellEvaluation, evaluateDialogContexts, type TestSamples } from './cell-eval.js';
import {
  cellName,
  contextKey,
  type DialogContext,
  type DialogStudyOptions,
  type ResolvedStudyOptions,
  resolveStudyOptions,
  sortContexts,
  trainingSettings,
} from './config.js';
import { studyMarkdown } from './markdown.js';
import { writeDailyDialogSubset } from './subset.js';

export interface StudyCell {
  model: string;
  trainContext: DialogContext;
  /** Relative to the study folder. */
  dir: string;
  params: number;
  steps: number;
  tokens: number;
  /** Training loss of the last logged step. */
  finalTrainLoss: number | null;
  /** Validation PPL at the training N (train's own final evaluation). */
  validationPerplexity: number | null;
  trainSeconds: number;
  evalSeconds: number;
  device: string;
}

export interface StudyResults {
  kind: 'dialog-study';
  version: 1;
  settings: ResolvedStudyOptions;
  /** The data the cells trained on (a subset folder when maxDialogs is set). */
  dataDir: string;
  data: { trainDialogs: number; trainSamples: number; testDialogs: number; testSamples: number };
  tokensPerCell: number;
  cells: StudyCell[];
  analysis: StudyAnalysis;
  /** Test samples per history-length value (1, 2, …). */
  historyHistogram: Record<string, number>;
  /** This invocation's wall time; the cells' training and evaluation time (all invocations). */
  wallSeconds: number;
  trainSeconds: number;
  evalSeconds: number;
  finished: string;
}

export interface StudyHooks {
  /** One line of progress (cell skipped, training, resuming, evaluating). */
  onLog?(line: string): void;
  onCellStart?(cell: { model: string; trainContext: DialogContext; index: number; total: number }, info: TrainStart): void;
  onStep?(m: StepMetrics): void;
  /** Polled between steps: true stops the cell's training after a checkpoint and the study after it. */
  shouldStop?(): boolean;
}

export interface StudyRun {
  out: string;
  stopped: boolean;
  /** Null when stopped. */
  results: StudyResults | null;
  /** Cells trained (or resumed) by this call; cells found trained and only evaluated (a new test N); cells found finished. */
  trained: string[];
  evaluated: string[];
  skipped: string[];
}

const STUDY_FILE = 'study.json';
const CELL_EVAL = 'test-eval.json';

function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

const readJson = (file: string): unknown => JSON.parse(readFileSync(file, 'utf8'));

interface SavedCellEval extends CellEvaluation {
  evalSeconds: number;
}

function lastTrainLine(dir: string): { step: number; tokens: number; loss: number; seconds: number } | null {
  const f = join(dir, 'metrics.jsonl');
  if (!existsSync(f)) return null;
  let last = null;
  for (const l of readFileSync(f, 'utf8').split('\n')) {
    if (!l.trim()) continue;
    try {
      const m = JSON.parse(l);
      if (m.kind === 'train') last = m;
    } catch {
      /* a torn last line */
    }
  }
  return last;
}

/** Runs (or continues) the study in `out`. */
export async function runDialogStudy(options: DialogStudyOptions & { out: string }, hooks: StudyHooks = {}): Promise<StudyRun> {
  const t0 = performance.now();
  const o = resolveStudyOptions(options);
  const out = resolve(options.out);
  const log = (s: string) => hooks.onLog?.(s);
  mkdirSync(join(out, 'cells'), { recursive: true });
  const studyFile = join(out, STUDY_FILE);
  const settings = trainingSettings(o);
  if (existsSync(studyFile)) {
    const prev = (readJson(studyFile) as { training: Record<string, unknown> }).training;
    for (const [k, v] of Object.entries(settings)) {
      if (JSON.stringify(prev?.[k]) !== JSON.stringify(v))
        fail(
          'dialogStudy',
          `${out} holds a study with ${k} = ${JSON.stringify(prev?.[k])}, not ${JSON.stringify(v)}; use another out folder or the same settings`,
        );
    }
  }
  writeAtomic(studyFile, `${JSON.stringify({ kind: 'dialog-study', training: settings, options: o }, null, 2)}\n`);

  const dataDir = o.maxDialogs === null && o.maxTestDialogs === null ? resolve(o.data) : join(out, 'data');
  if (dataDir !== resolve(o.data)) {
    const n = writeDailyDialogSubset(o.data, dataDir, { train: o.maxDialogs, validation: o.maxDialogs, test: o.maxTestDialogs });
    log(`data: subset of ${o.data} in ${dataDir}: ${n.train} training, ${n.validation} validation, ${n.test} test dialogs`);
  }
  const trainDialogs = loadDailyDialog(dataDir, 'train');
  const testDialogs = loadDailyDialog(dataDir, 'test');
  const tokenizer = createTokenizer({ kind: o.tokenizer });

  const cells: StudyCell[] = [];
  const cellLosses: CellLosses[] = [];
  const trained: string[] = [];
  const evaluated: string[] = [];
  const skipped: string[] = [];
  let samples: TestSamples | null = null;
  const total = o.models.length * o.trainContexts.length;
  let index = 0;
  for (const model of o.models) {
    for (const n of o.trainContexts) {
      index++;
      const name = cellName(model, n);
      const dir = join(out, 'cells', name);
      const evalFile = join(dir, CELL_EVAL);
      const want = sortContexts([...new Set([...o.testContexts, n])]);
      let saved: SavedCellEval | null = existsSync(evalFile) ? (readJson(evalFile) as SavedCellEval) : null;
      const missing = want.filter((t) => !saved?.contexts[contextKey(t)]);
      if (saved && missing.length === 0) {
        log(`cell ${index}/${total} ${name}: finished earlier, not retrained (${evalFile})`);
        skipped.push(name);
      } else {
        if (!existsSync(join(dir, 'eval.json'))) {
          const resume = existsSync(join(dir, 'checkpoint', 'config.json'));
          const overrides = {
            model: { model, preset: o.preset, ...o.modelFields },
            data: `dailydialog:${dataDir}`,
            tokenizer: o.tokenizer,
            context: o.context,
            dialogContext: n,
            batch: o.batch,
            steps: o.steps,
            lr: o.lr,
            seed: o.seed,
            device: o.device,
            acp: false,
            evalEvery: 0,
            evalRows: 64,
            checkpointEvery: o.checkpointEvery,
            logEvery: 10,
            extrapolate: [],
          };
          log(`cell ${index}/${total} ${name}: ${resume ? 'resuming its training from the checkpoint' : 'training'}`);
          const r = await train(overrides, {
            out: dir,
            resume,
            hooks: {
              onStart: (info) => {
                if (resume) log(`cell ${name}: resuming at step ${info.fromStep}`);
                hooks.onCellStart?.({ model, trainContext: n, index, total }, info);
              },
              onStep: hooks.onStep,
              shouldStop: hooks.shouldStop,
            },
          });
          if (r.stopped) {
            log(`cell ${name}: stopped at step ${r.step}; run the same study again to continue`);
            return { out, stopped: true, results: null, trained: [...trained, name], evaluated, skipped };
          }
          log(`cell ${name}: trained ${r.step} steps in ${r.seconds.toFixed(1)} s, final training loss ${r.loss.toFixed(4)}`);
          trained.push(name);
        } else {
          log(`cell ${index}/${total} ${name}: already trained, evaluating at test N = ${missing.join(', ')}`);
          evaluated.push(name);
        }
        const device = await openDevice(o.device);
        try {
          const ck = await loadCheckpoint(join(dir, 'checkpoint'), { backend: device.backend });
          const te = performance.now();
          const ev = await evaluateDialogContexts(ck.model, ck.params, testDialogs, {
            tokenizer,
            T: o.context,
            contexts: missing,
            batch: o.evalBatch,
            backend: device.backend,
            onContext: (t, s) => log(`cell ${name}: test N = ${t}: ${s.toFixed(1)} s`),
          });
          dispose(ck.params);
          saved = {
            samples: ev.samples,
            contexts: { ...(saved?.contexts ?? {}), ...ev.contexts },
            evalSeconds: (saved?.evalSeconds ?? 0) + (performance.now() - te) / 1000,
          };
          writeAtomic(evalFile, `${JSON.stringify(saved)}\n`);
        } finally {
          await device.release();
        }
      }
      const s = saved as SavedCellEval;
      samples ??= s.samples;
      if (s.samples.historyLength.length !== samples.historyLength.length)
        fail(
          'dialogStudy',
          `${evalFile} holds ${s.samples.historyLength.length} test samples, other cells ${samples.historyLength.length}`,
        );
      cellLosses.push({
        model,
        trainContext: n,
        losses: Object.fromEntries(Object.entries(s.contexts).map(([k, c]) => [k, c.meanLoss])),
      });
      const cfg = readJson(join(dir, 'config.json')) as { device: string; model: Record<string, unknown> };
      const last = lastTrainLine(dir);
      const ev = existsSync(join(dir, 'eval.json')) ? (readJson(join(dir, 'eval.json')) as { perplexity?: number }) : null;
      cells.push({
        model,
        trainContext: n,
        dir: join('cells', name),
        params: createModel(cfg.model as never).countParams(),
        steps: last?.step ?? 0,
        tokens: last?.tokens ?? 0,
        finalTrainLoss: last?.loss ?? null,
        validationPerplexity: ev?.perplexity ?? null,
        trainSeconds: last?.seconds ?? 0,
        evalSeconds: s.evalSeconds,
        device: cfg.device,
      });
      if (hooks.shouldStop?.()) return { out, stopped: true, results: null, trained, evaluated, skipped };
    }
  }
  const hist = (samples as TestSamples).historyLength;
  const analysis = analyseStudy(cellLosses, o.testContexts, hist, o.buckets);
  const historyHistogram: Record<string, number> = {};
  for (const h of hist) historyHistogram[h] = (historyHistogram[h] ?? 0) + 1;
  const results: StudyResults = {
    kind: 'dialog-study',
    version: 1,
    settings: o,
    dataDir,
    data: {
      trainDialogs: trainDialogs.length,
      trainSamples: countDialogSamples(trainDialogs),
      testDialogs: testDialogs.length,
      testSamples: hist.length,
    },
    tokensPerCell: o.steps * o.batch * o.context,
    cells,
    analysis,
    historyHistogram,
    wallSeconds: (performance.now() - t0) / 1000,
    trainSeconds: cells.reduce((a, c) => a + c.trainSeconds, 0),
    evalSeconds: cells.reduce((a, c) => a + c.evalSeconds, 0),
    finished: new Date().toISOString(),
  };
  writeAtomic(join(out, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  writeAtomic(join(out, 'results.md'), studyMarkdown(results));
  log(`results: ${join(out, 'results.json')}, ${join(out, 'results.md')}`);
  return { out, stopped: false, results, trained, evaluated, skipped };
}
