/**
 * @foxgate/attention — forgetting attention (FoX) with Adaptive Computation Pruning, and causal
 * softmax attention: a composed reference and fused CPU / WGSL kernels behind one API.
 * Kernel tuning (tile overrides, kernel launchers) lives in `@foxgate/attention/dev`.
 */

export { acpDeltaFromBound, DEFAULT_LOG_EPS } from './forgetting/acp.js';
export { type AcpOptions, type ForgettingAttentionOptions, forgettingAttention } from './forgetting/attention.js';
export type { AttentionOptions } from './options.js';
export { softmaxAttention } from './softmax/attention.js';
export { type SparsekAttentionOptions, type SparsekGate, sparsekAttention } from './sparsek/attention.js';
// SPARSEK (issue 18)
export { type SparsekOptions, sparsek } from './sparsek/op.js';
export type { SparsekBudget } from './sparsek/validate.js';
export type { AttentionResult, AttentionStats } from './stats.js';
export { ACP_TILE } from './tiles.js';
export { MAX_HEAD_DIM } from './validate.js';
