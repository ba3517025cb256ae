import type { ForwardOptions, Model, ModelParams } from '@foxgate/models';
import { argmax, type Backend, crossEntropy, dispose, tensor, tidy } from '@foxgate/tensor';
import { type Batch, IGNORE_INDEX } from '../data/batch.js';
import { dialogPerplexity, sampleMeanLosses } from '../data/dialog-ppl.js';
import type { SyntheticBatch } from '../data/synthetic/task.js';
import type { RunData } from './data-source.js';

export interface PositionBucket {
  /** Positions [start, end) of the row. */
  start: number;
  end: number;
  /** Mean loss of the counted targets there (null: none). */
  loss: number | null;
}

export interface ContextEval {
  context: number;
  /** Mean loss over every counted target. */
  loss: number;
  targets: number;
  perPosition: PositionBucket[];
  accuracy?: {
    name: string;
    value: number;
    chance: number;
    correct: number;
    total: number;
    byGroup: { group: number; value: number; total: number }[];
  };
  /** Dialog data: exp(mean over samples of each response's mean token loss). */
  perplexity?: number;
  samples?: number;
}

export interface EvalResult extends ContextEval {
  extrapolation: (ContextEval & { factor: number; acp?: { prunedFraction: number[] } })[];
  /** Per layer and head: mean logF over the validation tokens (FoX models). */
  gates?: { meanLogF: number[][] };
  /** Per layer: the fraction of 64×64 attention tiles ACP pruned (with ACP on). */
  acp?: { prunedFraction: number[] };
  sample?: Sample;
}

export interface EvaluateOptions {
  context: number;
  rows: number;
  acp?: ForwardOptions['acp'];
  /** Factors of `context` to evaluate too (length extrapolation). */
  extrapolate?: number[];
  /** Width of the per-position buckets (default context/16, at least 1). */
  bucket?: number;
  backend: Backend;
}

/** Batch tensors on a backend: tokens, targets, docStarts (when given and wanted). */
export function batchTensors(b: Batch, backend: Backend, withDocStarts: boolean) {
  const shape = [b.B, b.T];
  return {
    tokens: tensor(b.tokens, shape, { dtype: 'int32', backend }),
    targets: tensor(b.targets, shape, { dtype: 'int32', backend }),
    docStarts: withDocStarts && b.docStarts ? tensor(b.docStarts, shape, { dtype: 'bool', backend }) : undefined,
  };
}

async function evalContext(
  model: Model,
  params: ModelParams,
  data: RunData,
  T: number,
  opts: EvaluateOptions,
  gates: boolean,
): Promise<(ContextEval & { meanLogF?: number[][]; pruned?: number[] }) | null> {
  const batches = data.evaluation(T, opts.rows);
  if (!batches) return null;
  const width = opts.bucket ?? Math.max(1, Math.ceil(opts.context / 16));
  const nb = Math.ceil(T / width);
  const sum = new Float64Array(nb);
  const cnt = new Float64Array(nb);
  const fox = model.config.fgate_type !== 'none';
  const L = model.config.num_hidden_layers;
  const H = model.config.num_heads;
  const logFSum = Array.from({ length: L }, () => new Float64Array(H));
  const prunedSum = new Float64Array(L);
  let nBatches = 0;
  let logFCount = 0;
  let correct = 0;
  let total = 0;
  const groups = new Map<number, { c: number; t: number }>();
  const sampleLoss = new Map<number, number>();
  for (const b of batches) {
    const { losses, pred, logF, pruned } = tidy(() => {
      const t = batchTensors(b, opts.backend, fox);
      const { logits, stats } = model.forwardWithStats(params, t.tokens, { acp: fox ? opts.acp : undefined, docStarts: t.docStarts });
      return {
        losses: crossEntropy(logits, t.targets, { ignoreIndex: IGNORE_INDEX, reduction: 'none' }),
        pred: data.task ? argmax(logits, -1) : null,
        logF: gates ? stats.logF : [],
        pruned: stats.pruned,
      };
    });
    const l = await losses.data();
    for (let i = 0; i < b.B * b.T; i++) {
      if (b.targets[i] === IGNORE_INDEX) continue;
      const k = Math.floor((i % b.T) / width);
      sum[k] += l[i];
      cnt[k] += 1;
    }
    if (pred && data.task) {
      const p = Int32Array.from(await pred.data());
      const a = data.task.accuracy(p, b);
      correct += a.correct;
      total += a.total;
      for (const [g, ga] of data.task.accuracyByGroup(p, b as SyntheticBatch)) {
        const e = groups.get(g) ?? { c: 0, t: 0 };
        e.c += ga.correct;
        e.t += ga.total;
        groups.set(g, e);
      }
    }
    if (b.sampleIds) for (const [id, m] of sampleMeanLosses(l, b)) sampleLoss.set(id, m);
    for (let layer = 0; layer < logF.length; layer++) {
      const d = await logF[layer].data();
      for (let i = 0; i < d.length; i++) logFSum[layer][i % H] += d[i];
    }
    if (logF.length) logFCount += b.B * b.T;
    for (let layer = 0; layer < pruned.length; layer++) prunedSum[layer] += (await pruned[layer].data())[0];
    nBatches++;
    dispose([losses, pred, logF, pruned]);
  }
  const targets = cnt.reduce((a, v) => a + v, 0);
  if (targets === 0) return null;
  const out: ContextEval & { meanLogF?: number[][]; pruned?: number[] } = {
    context: T,
    loss: sum.reduce((a, v) => a + v, 0) / targets,
    targets,
    perPosition: Array.from({ length: nb }, (_, k) => ({
      start: k * width,
      end: Math.min(T, (k + 1) * width),
      loss: cnt[k] ? sum[k] / cnt[k] : null,
    })),
  };
  if (data.task && total > 0) {
    out.accuracy = {
      name: data.task.name,
      value: correct / total,
      chance: data.task.chance,
      correct,
      total,
      byGroup: [...groups].sort((a, b) => a[0] - b[0]).map(([group, e]) => ({ group, value: e.c / e.t, total: e.t })),
    };
  }
  if (sampleLoss.size) {
    out.perplexity = dialogPerplexity([...sampleLoss.values()]);
    out.samples = sampleLoss.size;
  }
  if (logFCount) out.meanLogF = logFSum.map((r) => [...r].map((v) => v / logFCount));
  if (nBatches) out.pruned = [...prunedSum].map((v) => v / nBatches);
  return out;
}

/**
 * Validation at the training context — mean loss, per-position loss in buckets (the FoX paper's
 * main figure), the task's accuracy or the dialog perplexity, mean logF per layer and head, ACP's
 * pruned fraction per layer — and the same loss curves at `extrapolate` × the context.
 */
export async function evaluate(model: Model, params: ModelParams, data: RunData, opts: EvaluateOptions): Promise<EvalResult> {
  const base = await evalContext(model, params, data, opts.context, opts, true);
  if (!base) throw new Error('evaluate: the validation data has no targets');
  const { meanLogF, pruned, ...rest } = base;
  const res: EvalResult = { ...rest, extrapolation: [] };
  if (meanLogF) res.gates = { meanLogF };
  if (pruned && opts.acp && model.config.fgate_type !== 'none') res.acp = { prunedFraction: pruned };
  for (const f of opts.extrapolate ?? []) {
    const e = await evalContext(model, params, data, opts.context * f, opts, false);
    if (e) {
      const { meanLogF: _g, pruned, ...r } = e;
      res.extrapolation.push({
        factor: f,
        ...r,
        ...(pruned && opts.acp && model.config.fgate_type !== 'none' ? { acp: { prunedFraction: pruned } } : {}),
      });
    }
  }
  return res;
}

export interface Sample {
  /** What the model was given. */
  prompt: string;
  /** What it produced: greedy answers (tasks) or a greedy continuation (text, dialog). */
  text: string;
  /** Tasks: answers right out of answers shown. */
  correct?: number;
  total?: number;
}

/**
 * A sample for people: on a synthetic task the first validation row with the model's greedy
 * answer at each query (teacher-forced, as greedy decoding of that row would give them); on text
 * and dialogs a greedy continuation of a validation prefix (the full forward at each token).
 */
export async function sampleOf(
  model: Model,
  params: ModelParams,
  data: RunData,
  context: number,
  backend: Backend,
  newTokens = 32,
): Promise<Sample | null> {
  const batches = data.evaluation(context, 1);
  if (!batches) return null;
  const first = batches[Symbol.iterator]().next();
  if (first.done) return null;
  const b = first.value;
  const T = b.T;
  if (data.task) {
    const row = (b as SyntheticBatch).rows?.[0];
    const pred = tidy(() => argmax(model.forward(params, tensor(b.tokens.slice(0, T), [1, T], { dtype: 'int32', backend })), -1));
    const p = await pred.data();
    pred.dispose();
    const answers = row?.answers ?? [];
    if (!answers.length) return null;
    const prompt = data.decode(b.tokens.slice(0, answers[0] + 1));
    let correct = 0;
    const parts = answers.map((t) => {
      const ok = p[t] === b.targets[t];
      if (ok) correct++;
      return `${data.decode([b.tokens[t]])}→${data.decode([p[t]])}${ok ? ' ✓' : ` ✗ (${data.decode([b.targets[t]])})`}`;
    });
    return { prompt, text: parts.join(', '), correct, total: answers.length };
  }
  const start = Math.min(32, Math.max(1, T - newTokens));
  const ids = Array.from(b.tokens.slice(0, start));
  for (let i = 0; i < newTokens && ids.length <= T; i++) {
    const x = tensor(Int32Array.from(ids), [1, ids.length], { dtype: 'int32', backend });
    const next = tidy(() => argmax(model.forward(params, x), -1));
    const d = await next.data();
    dispose([x, next]);
    ids.push(d[ids.length - 1]);
  }
  return { prompt: data.decode(ids.slice(0, start)), text: data.decode(ids.slice(start)) };
}
