import { fail, full, mul, type Tensor } from '@foxgate/tensor';
import { type AttentionResult, withStats } from './stats.js';
import type { FoxDims } from './tiles.js';
import { checkFlag, checkImpl, checkKeys, checkScale, checkWindow } from './validate.js';

/** Options every attention variant takes. */
export interface AttentionOptions {
  /** Score scale (default `1/√D`). */
  scale?: number;
  /** Also return how many 64×64 query×key tiles were computed (see `AttentionStats`). */
  stats?: boolean;
  /** 'fused' (default: the CPU or WGSL kernels) or 'reference' (composed ops, `[T,T]` scores). */
  impl?: 'fused' | 'reference';
  /**
   * Bitwise reproducible gradients on WebGPU: dQ from its own kernel rather than atomic adds
   * inside the dK/dV kernel, whose float additions land in a different order on every run
   * (about 12% slower fwd+bwd on an H200). The CPU kernels are always deterministic.
   */
  deterministic?: boolean;
  /**
   * Sliding-window attention: query i attends to the `window` key positions `(p − window, p]`
   * up to its own position p (itself included; an integer ≥ 1). Key tiles wholly before the
   * window are not computed: O(T·window·D) instead of O(T²·D). Default: full causal.
   */
  window?: number;
}

export const COMMON_KEYS = ['scale', 'stats', 'impl', 'deterministic', 'window'] as const;

export interface CommonOptions {
  scale: number;
  stats: boolean;
  impl: 'fused' | 'reference';
  deterministic: boolean;
  /** null: full causal (also for a window covering every causal pair). */
  window: number | null;
}

/** Checks the options object and its common keys (`extra`: the variant's own keys). */
export function parseOptions(op: string, opts: unknown, dims: FoxDims, extra: readonly string[]): CommonOptions {
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) fail(op, `opts must be an object, got ${JSON.stringify(opts)}`);
  checkKeys(op, opts, [...COMMON_KEYS, ...extra]);
  const o = opts as AttentionOptions;
  return {
    scale: checkScale(op, o.scale, dims.D),
    stats: checkFlag(op, 'stats', o.stats),
    impl: checkImpl(op, o.impl),
    deterministic: checkFlag(op, 'deterministic', o.deterministic),
    window: checkWindow(op, o.window, dims.Tk),
  };
}

/** No queries or no heads: a zero result (and zero tiles). */
export function emptyResult(q: Tensor, dims: FoxDims, stats: boolean): Tensor | AttentionResult {
  const out = mul(q, 0);
  return stats ? withStats(out, full([], 0, { backend: q.backend }), dims) : out;
}
