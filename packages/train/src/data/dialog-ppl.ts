/**
 * Dialog perplexity as the dialog context-length study defines it: a sample's PPL is
 * exp(mean token loss over its response tokens); the reported PPL is exp(mean over samples of
 * their mean token losses).
 */
import { fail } from '@foxgate/tensor';
import type { Batch } from './batch.js';

/**
 * Mean loss per sample of a batch: `losses[b*T+t]` is the token loss (natural log) at each
 * position; positions whose `batch.sampleIds` is -1 are skipped. Samples in order of first
 * appearance.
 */
export function sampleMeanLosses(losses: ArrayLike<number>, batch: Batch): Map<number, number> {
  const op = 'sampleMeanLosses';
  if (!batch.sampleIds) fail(op, 'batch has no sampleIds (use dialogBatches or dialogEvalBatches)');
  if (losses.length !== batch.B * batch.T)
    fail(op, `losses has ${losses.length} values but the batch has B·T = ${batch.B * batch.T} positions`);
  const sum = new Map<number, number>();
  const count = new Map<number, number>();
  for (let i = 0; i < losses.length; i++) {
    const id = batch.sampleIds[i];
    if (id < 0) continue;
    const l = losses[i];
    if (!Number.isFinite(l)) fail(op, `losses[${i}] is ${l} (sample ${id})`);
    sum.set(id, (sum.get(id) ?? 0) + l);
    count.set(id, (count.get(id) ?? 0) + 1);
  }
  const out = new Map<number, number>();
  for (const [id, s] of sum) out.set(id, s / count.get(id)!);
  return out;
}

/** A sample's perplexity: exp of its mean token loss. */
export function samplePerplexity(meanLoss: number): number {
  return Math.exp(meanLoss);
}

/** exp(mean over samples of their mean token losses). */
export function dialogPerplexity(perSampleMeanLoss: readonly number[]): number {
  const op = 'dialogPerplexity';
  if (perSampleMeanLoss.length === 0) fail(op, 'perSampleMeanLoss is empty: no samples were evaluated');
  let s = 0;
  for (let i = 0; i < perSampleMeanLoss.length; i++) {
    const l = perSampleMeanLoss[i];
    if (!Number.isFinite(l)) fail(op, `perSampleMeanLoss[${i}] is ${l}`);
    s += l;
  }
  return Math.exp(s / perSampleMeanLoss.length);
}
