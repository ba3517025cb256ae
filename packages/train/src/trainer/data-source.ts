import { existsSync } from 'node:fs';
import { fail } from '@foxgate/tensor';
import type { Batch } from '../data/batch.js';
import { type DialogBatch, dialogBatches, dialogEvalBatches } from '../data/dialog-batches.js';
import { type Dialog, loadDailyDialog, readJsonlDialogs } from '../data/dialogs.js';
import { lmBatches, lmEvalBatches } from '../data/lm.js';
import { splitDocuments } from '../data/split.js';
import { createTask } from '../data/synthetic/create.js';
import type { SyntheticTask, TaskName } from '../data/synthetic/task.js';
import { openTextCorpus, type TextDocument } from '../data/text.js';
import { createTokenizer } from '../tokenizers/create.js';
import type { Tokenizer } from '../tokenizers/types.js';
import type { RunConfig } from './config.js';

/** A loader of training batches that can report and resume its position. */
export interface TrainLoader {
  next(): Batch;
  state(): unknown;
}

/** What a run trains and evaluates on, whatever the data kind. */
export interface RunData {
  kind: 'task' | 'lm' | 'dialog';
  /** One line for people. */
  describe: string;
  vocabSize: number;
  tokenizer: Tokenizer | null;
  task: SyntheticTask | null;
  decode(ids: ArrayLike<number>): string;
  /** Training batches from the start (`state` undefined) or from a saved position. */
  train(state?: unknown): TrainLoader;
  /** Validation batches of context T (T > the training context: length extrapolation); null where that cannot be made. */
  evaluation(T: number, rows: number): Iterable<Batch> | null;
}

/** `kind:rest` → [kind, rest]; a bare path is `text`. */
export function parseDataSpec(spec: string): [string, string] {
  const m = /^(synthetic|text|dailydialog|jsonl):(.*)$/.exec(spec);
  if (m) return [m[1], m[2]];
  if (/^[a-z]+:/.test(spec) && !/^[A-Za-z]:[\\/]/.test(spec)) {
    fail('train', `data '${spec}': unknown kind (use synthetic:mqar|needle|dialog, text:PATH, dailydialog:DIR or jsonl:FILE)`);
  }
  return ['text', spec];
}

function taskData(name: string, cfg: RunConfig): RunData {
  if (!['mqar', 'needle', 'dialog'].includes(name)) fail('train', `data 'synthetic:${name}': no such task (tasks: mqar, needle, dialog)`);
  const make = (T: number, B: number, extra: Record<string, unknown> = {}) => createTask(name as TaskName, { ...cfg.task, T, B, ...extra });
  const task = make(cfg.context, cfg.batch);
  return {
    kind: 'task',
    describe: task.describe(),
    vocabSize: task.vocabSize,
    tokenizer: null,
    task,
    decode: (ids) => task.decode(ids),
    train: (state) => task.batches((state as never) ?? cfg.seed),
    evaluation: (T, rows) => {
      let t: SyntheticTask;
      try {
        // longer contexts of MQAR hold as many episodes as fit, each marked in docStarts (FoX resets there)
        const longer = name === 'mqar' && cfg.task.episodes === undefined ? { episodes: 'fill' } : {};
        t = T === cfg.context ? task : make(T, Math.min(cfg.batch, rows), longer);
      } catch {
        return null; // the task's options do not fit this length
      }
      return t.evalBatches({ rows });
    },
  };
}

function textData(path: string, cfg: RunConfig): RunData {
  if (!existsSync(path)) fail('train', `data '${path}': no such file or folder`);
  const tokenizer = createTokenizer({ kind: cfg.tokenizer });
  const corpus = openTextCorpus(path);
  if (corpus.documents.length < 2)
    fail('train', `data '${path}': needs at least 2 documents (or a file large enough to cut into segments) to hold one out`);
  const split = splitDocuments<TextDocument>(corpus.documents, { seed: 0, validationFraction: cfg.validation });
  const docStarts = cfg.docResets;
  return {
    kind: 'lm',
    describe: `${corpus.documents.length} documents from ${path} (${split.validation.length} held out), ${cfg.tokenizer} tokens`,
    vocabSize: tokenizer.vocabSize,
    tokenizer,
    task: null,
    decode: (ids) => tokenizer.decode(ids),
    train: (state) => lmBatches(split.train, { tokenizer, T: cfg.context, B: cfg.batch, seed: cfg.seed, docStarts }, state as never),
    evaluation: (T, rows) => lmEvalBatches(split.validation, { tokenizer, T, B: Math.min(cfg.batch, rows), docStarts, maxRows: rows }),
  };
}

function dialogData(kind: string, path: string, cfg: RunConfig): RunData {
  const tokenizer = createTokenizer({ kind: cfg.tokenizer });
  let train: Dialog[];
  let validation: Dialog[];
  if (kind === 'dailydialog') {
    train = loadDailyDialog(path, 'train');
    validation = loadDailyDialog(path, 'validation');
  } else {
    if (!existsSync(path)) fail('train', `data '${path}': no such file`);
    const all = readJsonlDialogs(path);
    ({ train, validation } = splitDocuments(all, { seed: 0, validationFraction: cfg.validation }));
  }
  const opts = { tokenizer, T: cfg.context, context: cfg.dialogContext };
  return {
    kind: 'dialog',
    describe: `${train.length} dialogs (${validation.length} for validation) from ${path}, last ${cfg.dialogContext} utterances as context, ${cfg.tokenizer} tokens`,
    vocabSize: tokenizer.vocabSize,
    tokenizer,
    task: null,
    decode: (ids) => tokenizer.decode(ids),
    train: (state) => dialogBatches(train, { ...opts, B: cfg.batch, seed: cfg.seed }, state as never),
    evaluation: (T, rows): Iterable<DialogBatch> | null =>
      T === cfg.context ? dialogEvalBatches(validation, { ...opts, B: Math.min(cfg.batch, rows), maxRows: rows }) : null,
  };
}

/** The run's data from its config (files are checked and opened here, before any training). */
export function runData(cfg: RunConfig): RunData {
  const [kind, rest] = parseDataSpec(cfg.data);
  if (kind === 'synthetic') return taskData(rest, cfg);
  if (kind === 'text') return textData(rest, cfg);
  return dialogData(kind, rest, cfg);
}
