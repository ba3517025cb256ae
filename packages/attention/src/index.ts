/**
 * @foxgate/attention — forgetting attention (FoX) with Adaptive Computation Pruning, and causal
 * softmax attention: a composed reference and fused CPU / WGSL kernels behind one API.
 */

export { acpDeltaFromBound, DEFAULT_LOG_EPS } from './forgetting/acp.js';
export {
  type AcpOptions,
  type AttentionOptions,
  type AttentionResult,
  type AttentionStats,
  type ForgettingAttentionOptions,
  forgettingAttention,
  softmaxAttention,
} from './forgetting/attention.js';
export { BLOCK_K, BLOCK_Q } from './forgetting/blocks.js';
export { MAX_HEAD_DIM } from './forgetting/validate.js';
export { type FoxTileOverrides, foxTilesFor, setFoxTiles } from './forgetting/webgpu.js';
export type { FoxTileConfig } from './forgetting/wgsl.js';
export type { FoxWideConfig } from './forgetting/wgsl-wide.js';
// SPARSEK (issue 18)
export { type SparsekOptions, sparsek } from './sparsek/op.js';
export { type SparsekAttentionOptions, type SparsekGate, sparsekAttention } from './sparsek/attention.js';
export type { SparsekBudget } from './sparsek/validate.js';
