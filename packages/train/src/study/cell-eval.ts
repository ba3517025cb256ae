/**
 * A trained cell on the test split at several context lengths: per-sample mean token loss over
 * each response (the study's per-sample PPL is its exp). Rows are cut to their batch's longest
 * row before the forward: the models are causal, so the padding after a row changes nothing.
 */
import type { Model, ModelParams } from '@foxgate/models';
import { type Backend, crossEntropy, dispose, tensor, tidy } from '@foxgate/tensor';
import { IGNORE_INDEX } from '../data/batch.js';
import { type DialogBatch, dialogEvalBatches } from '../data/dialog-batches.js';
import { sampleMeanLosses } from '../data/dialog-ppl.js';
import type { Dialog } from '../data/dialogs.js';
import type { Tokenizer } from '../tokenizers/types.js';
import { contextKey, type DialogContext } from './config.js';

/** What is known of each test sample, whatever the context (index = sample id). */
export interface TestSamples {
  dialogId: (string | number)[];
  turnIndex: number[];
  /** Previous utterances available. */
  historyLength: number[];
  /** Tokens with loss: the response (≤ 49 tokens) and its end token. */
  responseTokens: number[];
}

/** One test N: each sample's mean token loss and how many previous utterances its row held. */
export interface ContextLosses {
  meanLoss: number[];
  contextUtterances: number[];
  /** Rows whose left end was cut to fit T. */
  truncated: number;
}

export interface CellEvaluation {
  samples: TestSamples;
  /** By context key ('1', 'all'). */
  contexts: Record<string, ContextLosses>;
}

export interface EvaluateContextsOptions {
  tokenizer: Tokenizer;
  /** Tokens per row T (the cell's training context). */
  T: number;
  contexts: DialogContext[];
  batch: number;
  backend: Backend;
  /** Called after each test N. */
  onContext?(n: DialogContext, seconds: number): void;
}

/** The batch cut to its longest row (positions past it are padding for every row). */
export function trimBatch(b: DialogBatch): DialogBatch {
  let L = 1;
  for (let r = 0; r < b.B; r++) {
    for (let t = b.T - 1; t >= L; t--) {
      if (b.sampleIds[r * b.T + t] >= 0) {
        L = t + 1;
        break;
      }
    }
  }
  if (L === b.T) return b;
  const cut = (a: Int32Array) => {
    const o = new Int32Array(b.B * L);
    for (let r = 0; r < b.B; r++) o.set(a.subarray(r * b.T, r * b.T + L), r * L);
    return o;
  };
  return { ...b, T: L, tokens: cut(b.tokens), targets: cut(b.targets), sampleIds: cut(b.sampleIds) };
}

/** Per-sample mean losses of `model` on `dialogs` at each context of `opts.contexts`. */
export async function evaluateDialogContexts(
  model: Model,
  params: ModelParams,
  dialogs: readonly Dialog[],
  opts: EvaluateContextsOptions,
): Promise<CellEvaluation> {
  let samples: TestSamples | null = null;
  const contexts: Record<string, ContextLosses> = {};
  for (const n of opts.contexts) {
    const t0 = performance.now();
    const s: TestSamples = { dialogId: [], turnIndex: [], historyLength: [], responseTokens: [] };
    const out: ContextLosses = { meanLoss: [], contextUtterances: [], truncated: 0 };
    for (const full of dialogEvalBatches(dialogs, { tokenizer: opts.tokenizer, T: opts.T, B: opts.batch, context: n })) {
      const b = trimBatch(full);
      const losses = tidy(() => {
        const x = tensor(b.tokens, [b.B, b.T], { dtype: 'int32', backend: opts.backend });
        const y = tensor(b.targets, [b.B, b.T], { dtype: 'int32', backend: opts.backend });
        return crossEntropy(model.forward(params, x), y, { ignoreIndex: IGNORE_INDEX, reduction: 'none' });
      });
      const l = await losses.data();
      dispose(losses);
      const means = sampleMeanLosses(l, b);
      for (const smp of b.samples) {
        const m = means.get(smp.id);
        if (m === undefined) throw new Error(`evaluateDialogContexts: sample ${smp.id} has no loss`);
        out.meanLoss[smp.id] = m;
        out.contextUtterances[smp.id] = smp.contextUtterances;
        if (smp.truncated) out.truncated++;
        s.dialogId[smp.id] = smp.dialogId;
        s.turnIndex[smp.id] = smp.turnIndex;
        s.historyLength[smp.id] = smp.historyLength;
        s.responseTokens[smp.id] = smp.responseTokens;
      }
    }
    samples ??= s;
    contexts[contextKey(n)] = out;
    opts.onContext?.(n, (performance.now() - t0) / 1000);
  }
  if (!samples) throw new Error('evaluateDialogContexts: no contexts given');
  return { samples, contexts };
}
