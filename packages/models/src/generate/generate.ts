import { fail } from '@foxgate/tensor';
import type { Model, ModelParams } from '../model.js';
import { type CacheStats, checkPrompts, createDecoder } from './decoder.js';
import { checkSampling, type SamplingOptions, sampleToken, sampleUniform } from './sampling.js';

export interface GenerateOptions extends SamplingOptions {
  /** New tokens per prompt (at most; fewer when a stop token comes). */
  maxNewTokens: number;
  /** Seed of the sampling RNG (default 0); the draw for (step, prompt) depends on nothing else. */
  seed?: number;
  /** Token ids that end a sequence (each sequence on its own); the stop token is returned as its last token. */
  stop?: readonly number[];
  /** 'acp': evict cached keys that ACP prunes for every later query (FoX models); default 'none'. */
  kvEvict?: 'none' | 'acp';
  /** log ε of the eviction bound (≤ 0, default −10). */
  acpLogEps?: number;
  /** 'fused' kernels (default) or the composed 'reference' attention. */
  impl?: 'fused' | 'reference';
}

export interface GenerateStats {
  /** Cache entries kept vs the full length (per layer and head; summed over the batch) at the end, and the cache's bytes. */
  cache: CacheStats;
  /** New tokens (all prompts) per second of prefill + decoding. */
  tokensPerSecond: number;
  /** Tokens per second of the decode steps alone (one token per running sequence and step). */
  decodeTokensPerSecond: number;
  prefillSeconds: number;
  decodeSeconds: number;
}

export interface GenerateResult {
  /** The new tokens of each prompt (the prompt itself not included). */
  tokens: number[][];
  stats: GenerateStats;
}

const OP = 'generate';
const KNOWN = ['maxNewTokens', 'temperature', 'topK', 'topP', 'seed', 'stop', 'kvEvict', 'acpLogEps', 'impl'];

function checkOptions(opts: GenerateOptions, vocab: number): void {
  if (opts === null || typeof opts !== 'object') fail(OP, 'opts must be an object with maxNewTokens');
  for (const k of Object.keys(opts)) if (!KNOWN.includes(k)) fail(OP, `unknown option '${k}' (options: ${KNOWN.join(', ')})`);
  if (!Number.isInteger(opts.maxNewTokens) || opts.maxNewTokens < 1) {
    fail(OP, `opts.maxNewTokens must be a positive integer, got ${String(opts.maxNewTokens)}`);
  }
  checkSampling(OP, opts);
  if (opts.seed !== undefined && !Number.isSafeInteger(opts.seed)) fail(OP, `opts.seed must be an integer, got ${String(opts.seed)}`);
  if (opts.stop !== undefined) {
    if (!Array.isArray(opts.stop)) fail(OP, `opts.stop must be an array of token ids, got ${String(opts.stop)}`);
    for (const t of opts.stop) {
      if (!Number.isInteger(t) || t < 0 || t >= vocab) fail(OP, `opts.stop holds ${String(t)}, not a token id in [0, ${vocab})`);
    }
  }
}

/**
 * Generates up to `maxNewTokens` tokens after each prompt with a KV cache: one prefill over the
 * left-padded batch, then one cached step per token. Greedy at temperature 0; otherwise sampled
 * on the host from the read-back logits with a counter-based RNG (reproducible per seed on
 * every backend). The cache is freed when generation ends.
 */
export async function generate(
  model: Model,
  params: ModelParams,
  prompts: readonly (readonly number[] | Int32Array)[],
  opts: GenerateOptions,
): Promise<GenerateResult> {
  const V = model.config.vocab_size;
  checkOptions(opts, V);
  const ps = checkPrompts(OP, prompts, V);
  const T = Math.max(...ps.map((p) => p.length));
  const n = opts.maxNewTokens;
  const seed = opts.seed ?? 0;
  const stop = new Set(opts.stop ?? []);
  const decoder = await createDecoder(model, params, {
    kvEvict: opts.kvEvict,
    acpLogEps: opts.acpLogEps,
    maxLength: T + n,
    impl: opts.impl,
  });
  const B = ps.length;
  const out: number[][] = ps.map(() => []);
  const done = new Array<boolean>(B).fill(false);
  let steps = 0;
  let stepped = 0;
  try {
    const t0 = performance.now();
    let logits = await decoder.prefill(ps);
    const t1 = performance.now();
    for (let s = 0; ; s++) {
      for (let b = 0; b < B; b++) {
        if (done[b]) continue;
        const tok = sampleToken(logits.subarray(b * V, (b + 1) * V), opts, sampleUniform(seed, s, b));
        out[b].push(tok);
        if (stop.has(tok) || out[b].length >= n) done[b] = true;
      }
      if (done.every(Boolean)) break;
      stepped += done.filter((d) => !d).length;
      steps++;
      // finished sequences keep stepping on their last token (their logits are ignored)
      logits = await decoder.step(out.map((o) => o[o.length - 1]));
    }
    const t2 = performance.now();
    const prefillSeconds = (t1 - t0) / 1000;
    const decodeSeconds = (t2 - t1) / 1000;
    const total = out.reduce((a, o) => a + o.length, 0);
    return {
      tokens: out,
      stats: {
        cache: decoder.cacheStats(),
        tokensPerSecond: total / Math.max(prefillSeconds + decodeSeconds, 1e-9),
        decodeTokensPerSecond: steps ? stepped / Math.max(decodeSeconds, 1e-9) : 0,
        prefillSeconds,
        decodeSeconds,
      },
    };
  } finally {
    decoder.dispose();
  }
}
