import { type Backend, dispose, fail, rngKey, type Tensor, tensor } from '@foxgate/tensor';
import { headDim, type ModelName, type PresetName } from '../config.js';
import { createModel, type Model, type ModelParams } from '../model.js';
import { createDecoder } from './decoder.js';
import { generate } from './generate.js';
import { argmaxOf } from './sampling.js';

export interface BenchGenerateOptions {
  model: ModelName;
  preset: PresetName;
  /** Prompt tokens (random ids, seeded). */
  promptLength: number;
  /** New tokens of the cached run and of the cache-size rows. */
  newTokens: number;
  backend?: string | Backend;
  /** New tokens of the run that recomputes the whole prefix per token (default min(newTokens, 8): it is slow). */
  recomputeTokens?: number;
  /** Generated lengths at which the cache size is recorded (default 4 even steps up to newTokens). */
  sizeAt?: number[];
  /** Vocabulary of the benchmark model (default the preset's config). */
  vocabSize?: number;
}

export type BenchGenerateRow =
  | {
      kind: 'speed';
      /** 'cache': one cached step per token; 'recompute': a full forward over prefix + generated per token. */
      mode: 'cache' | 'recompute';
      tokens: number;
      /** Decode tokens per second (batch 1, greedy). */
      tokensPerSecond: number;
      /** The prompt's forward (the cached run's prefill), seconds. */
      prefillSeconds: number;
    }
  | {
      kind: 'size';
      evict: 'none' | 'acp';
      /** Tokens generated so far. */
      generated: number;
      /** Bytes the cache buffers hold (allocated; keys, values, logF, shift rows; all layers). */
      bytes: number;
      /** Cache entries (layer × head × position) kept, and the full count. */
      kept: number;
      full: number;
      /** Bytes of the kept entries alone (keys, values, logF) — what per-head storage would hold. */
      keptBytes: number;
    };

/**
 * Gates like a trained FoX model's (as in the attention benchmark): half the heads remember long
 * (gate bias 7.5, logF ≈ −5.5e−4 per token), half decay (bias 2.5, logF ≈ −0.08).
 */
export function trainedLikeGates(model: Model, params: ModelParams): void {
  const H = model.config.num_heads;
  for (const l of params.model.layers) {
    const g = l.attn.fgate_proj;
    if (!g?.bias) continue;
    const b = tensor(
      Float32Array.from({ length: H }, (_, h) => (h < H / 2 ? 7.5 : 2.5)),
      [H],
      { backend: g.bias.backend },
    );
    g.bias.dispose();
    g.bias = b;
  }
}

function promptOf(n: number, V: number): number[] {
  let s = 12345;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % V;
  });
}

/**
 * `foxgate bench generate`: decode tokens/s with the KV cache vs recomputing the prefix per
 * token, and the cache's size vs the generated length with and without ACP eviction (FoX
 * models, trained-like gates). Random weights (seed 0); the prompt is random ids.
 */
export async function benchGenerate(o: BenchGenerateOptions): Promise<BenchGenerateRow[]> {
  const op = 'benchGenerate';
  for (const k of ['promptLength', 'newTokens'] as const) {
    if (!Number.isInteger(o[k]) || o[k] < 1) fail(op, `${k} must be a positive integer, got ${String(o[k])}`);
  }
  const model = createModel({ model: o.model, preset: o.preset, ...(o.vocabSize ? { vocab_size: o.vocabSize } : {}) });
  const c = model.config;
  const params = model.init(rngKey(0), { backend: o.backend });
  const rows: BenchGenerateRow[] = [];
  try {
    trainedLikeGates(model, params);
    const backend = params.model.embeddings.weight.backend;
    const prompt = promptOf(o.promptLength, c.vocab_size);
    const cached = await generate(model, params, [prompt], { maxNewTokens: o.newTokens, temperature: 0 });
    rows.push({
      kind: 'speed',
      mode: 'cache',
      tokens: o.newTokens,
      tokensPerSecond: cached.stats.decodeTokensPerSecond,
      prefillSeconds: cached.stats.prefillSeconds,
    });
    // recompute: a full forward over the whole sequence for every new token
    const nRe = o.recomputeTokens ?? Math.min(o.newTokens, 8);
    const seq = [...prompt];
    let prefill = 0;
    let decode = 0;
    for (let i = 0; i <= nRe; i++) {
      const t0 = performance.now();
      const ids = tensor(Int32Array.from(seq), [1, seq.length], { dtype: 'int32', backend });
      const logits: Tensor = model.forward(params, ids);
      const host = await logits.data();
      seq.push(argmaxOf(host.subarray((seq.length - 1) * c.vocab_size)));
      dispose([ids, logits]);
      const dt = (performance.now() - t0) / 1000;
      if (i === 0) prefill = dt;
      else decode += dt;
    }
    rows.push({ kind: 'speed', mode: 'recompute', tokens: nRe, tokensPerSecond: nRe / decode, prefillSeconds: prefill });
    if (c.fgate_type === 'full') {
      const at = o.sizeAt ?? [1, 2, 3, 4].map((i) => Math.max(1, Math.round((i * o.newTokens) / 4)));
      const item = params.model.embeddings.weight.dtype === 'float64' ? 8 : 4;
      const D = headDim(c);
      for (const evict of ['none', 'acp'] as const) {
        const dec = await createDecoder(model, params, { kvEvict: evict, maxLength: o.promptLength + o.newTokens });
        try {
          let logits = await dec.prefill([prompt]);
          for (let g = 1; g <= Math.max(...at); g++) {
            logits = await dec.step([argmaxOf(logits)]);
            if (!at.includes(g)) continue;
            const s = dec.cacheStats();
            rows.push({
              kind: 'size',
              evict,
              generated: g,
              bytes: s.bytes,
              kept: s.kept,
              full: s.full,
              keptBytes: s.kept * (2 * D + 1) * item,
            });
          }
        } finally {
          dec.dispose();
        }
      }
    }
    return rows;
  } finally {
    dispose(params);
  }
}
