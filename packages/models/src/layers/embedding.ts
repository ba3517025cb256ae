import { fail, fmtShape, type RngKeyLike, randomNormal, type Tensor, take } from '@foxgate/tensor';
import { checkDim, checkFloat, checkTensor } from '../check.js';
import type { InitOptions } from './linear.js';

/** A token embedding table (PyTorch's `nn.Embedding.weight`). */
export interface EmbeddingParams {
  /** `[vocab, dim]`. */
  weight: Tensor;
}

/** `weight ~ N(0, std²)` of shape `[vocab, dim]`; `std` defaults to 0.02. */
export function initEmbedding(key: RngKeyLike, vocab: number, dim: number, opts: InitOptions & { std?: number } = {}): EmbeddingParams {
  checkDim('initEmbedding', 'vocab', vocab);
  checkDim('initEmbedding', 'dim', dim);
  const dtype = opts.dtype ?? 'float32';
  checkFloat('initEmbedding', 'dtype', dtype);
  return { weight: randomNormal(key, [vocab, dim], { dtype, backend: opts.backend, std: opts.std ?? 0.02 }) };
}

/**
 * Looks up int32 token ids `[...]` → `[..., dim]`. Ids must lie in `[0, vocab)`: the CPU
 * throws on others, WebGPU reads zeros (checking would need a readback).
 */
export function embedding(p: EmbeddingParams, ids: Tensor): Tensor {
  const op = 'embedding';
  if (p === null || typeof p !== 'object') fail(op, `p must be {weight}, got ${p === null ? 'null' : typeof p}`);
  checkTensor(op, 'p.weight', p.weight);
  checkTensor(op, 'ids', ids);
  if (p.weight.rank !== 2) fail(op, `p.weight must be [vocab, dim], got ${fmtShape(p.weight.shape)}`);
  if (ids.dtype !== 'int32') fail(op, `ids must be int32, got ${ids.dtype}${fmtShape(ids.shape)}`);
  if (ids.backend !== p.weight.backend) fail(op, `ids live on ${ids.backend.name} but p.weight on ${p.weight.backend.name}`);
  return take(p.weight, ids, 0);
}
