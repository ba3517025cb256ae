import { fail } from '@foxgate/tensor';

/**
 * Learning-rate schedules as functions of the number of training tokens seen. AdamW calls its
 * `lr` with the 1-based step; a trainer adapts with `lr: (step) => schedule(step · tokensPerStep)`
 * (the tokens seen once this step is done, so the first step's rate is not 0) or keeps its own
 * token count in the closure.
 */

/** A learning rate as a function of tokens seen (a finite number ≥ 0). */
export type TokenSchedule = (tokens: number) => number;

export interface WarmupCosineOptions {
  /** The rate at the end of the warmup, > 0. */
  peak: number;
  /** Tokens of linear warmup from 0 to `peak`, ≥ 0 (0: start at `peak`). */
  warmupTokens: number;
  /** Tokens at which the cosine reaches `minRatio · peak` (and stays), > `warmupTokens`. */
  totalTokens: number;
  /** The final rate as a fraction of `peak`, in [0, 1]. Default 0.1 (decay to a tenth). */
  minRatio?: number;
}

const finite = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

function checkTokens(op: string, tokens: number): void {
  if (!(finite(tokens) && tokens >= 0)) fail(op, `tokens must be a finite number ≥ 0, got ${String(tokens)}`);
}

/**
 * Linear warmup, then cosine decay, by tokens seen (`n`):
 *
 * ```
 * n < W:      lr = peak · n / W
 * W ≤ n ≤ N:  lr = peak · (r + (1 − r) · ½ (1 + cos(π (n − W) / (N − W))))
 * n > N:      lr = peak · r
 * ```
 *
 * with `W = warmupTokens`, `N = totalTokens`, `r = minRatio` (default 0.1).
 */
export function warmupCosine(options: WarmupCosineOptions): TokenSchedule {
  const op = 'warmupCosine';
  if (options === null || typeof options !== 'object') fail(op, `options must be an object, got ${String(options)}`);
  for (const key of Object.keys(options)) {
    if (!['peak', 'warmupTokens', 'totalTokens', 'minRatio'].includes(key)) {
      fail(op, `unknown option ${JSON.stringify(key)} (the options are peak, warmupTokens, totalTokens, minRatio)`);
    }
  }
  const { peak, warmupTokens, totalTokens, minRatio = 0.1 } = options;
  if (!(finite(peak) && peak > 0)) fail(op, `peak must be a finite number > 0, got ${String(peak)}`);
  if (!(finite(warmupTokens) && warmupTokens >= 0)) fail(op, `warmupTokens must be a finite number ≥ 0, got ${String(warmupTokens)}`);
  if (!(finite(totalTokens) && totalTokens > warmupTokens)) {
    fail(op, `totalTokens must be a finite number > warmupTokens (${warmupTokens}), got ${String(totalTokens)}`);
  }
  if (!(finite(minRatio) && minRatio >= 0 && minRatio <= 1)) fail(op, `minRatio must be in [0, 1], got ${String(minRatio)}`);
  const floor = peak * minRatio;
  return (tokens: number): number => {
    checkTokens(op, tokens);
    if (tokens < warmupTokens) return (peak * tokens) / warmupTokens;
    if (tokens >= totalTokens) return floor;
    const progress = (tokens - warmupTokens) / (totalTokens - warmupTokens);
    return floor + (peak - floor) * 0.5 * (1 + Math.cos(Math.PI * progress));
  };
}

/**
 * A constant rate `lr` (> 0), after an optional linear warmup from 0 over `warmupTokens`
 * (default 0: constant from the start).
 */
export function constantLr(lr: number, options: { warmupTokens?: number } = {}): TokenSchedule {
  const op = 'constantLr';
  if (!(finite(lr) && lr > 0)) fail(op, `lr must be a finite number > 0, got ${String(lr)}`);
  const warmupTokens = options?.warmupTokens ?? 0;
  if (!(finite(warmupTokens) && warmupTokens >= 0)) fail(op, `warmupTokens must be a finite number ≥ 0, got ${String(warmupTokens)}`);
  return (tokens: number): number => {
    checkTokens(op, tokens);
    return tokens < warmupTokens ? (lr * tokens) / warmupTokens : lr;
  };
}
