import { add, dispose, fail, keep, matmul, narrow, reshape, type Tensor, tensor, tidy, transpose } from '@foxgate/tensor';
import { attentionLayer, layerRopeTables, sparsekScores } from '../attention-layer.js';
import { headDim } from '../config.js';
import { embedding } from '../layers/embedding.js';
import type { LinearParams } from '../layers/linear.js';
import { applyLinear } from '../layers/linear.js';
import { rmsNormLayer } from '../layers/norm.js';
import { swiglu } from '../layers/swiglu.js';
import type { Model, ModelParams } from '../model.js';
import type { CacheStats, Decoder, DecoderOptions } from './decoder.js';
import { checkPrompts } from './decoder.js';
import { SparsekLayerCache } from './sparsek-cache.js';

const OP = 'generate';

/**
 * The decoder of model 'sparsek' (see `createDecoder`): each prompt is prefilled on its own with
 * the full SPARSEK kernel, then the batch decodes one token per step through a bounded
 * `SparsekLayerCache` per layer. RoPE runs at left-padded buffer positions (scores depend only on
 * position differences); the SPARSEK scores use each sequence's own absolute position.
 */
export async function createSparsekDecoder(model: Model, params: ModelParams, opts: DecoderOptions = {}): Promise<Decoder> {
  const c = model.config;
  const evict = opts.kvEvict ?? 'none';
  if (evict !== 'none') {
    fail(
      OP,
      `opts.kvEvict ${JSON.stringify(evict)} is not for model 'sparsek': its cache already evicts what the SPARSEK threshold can never select again`,
    );
  }
  if (opts.impl !== undefined && opts.impl !== 'fused' && opts.impl !== 'reference') {
    fail(OP, `opts.impl must be 'fused' or 'reference', got ${JSON.stringify(opts.impl)}`);
  }
  const emb = params.model.embeddings.weight;
  const H = c.num_heads;
  const D = headDim(c);
  const V = c.vocab_size;
  const W = c.sparsek_window ?? 64;
  const shape = {
    H,
    D,
    dtype: emb.dtype,
    backend: emb.backend,
    k: c.sparsek_k ?? 64,
    window: W,
    gate: c.sparsek_gate ?? 'kv',
  };
  let layers: SparsekLayerCache[] = [];
  let B = 0;
  let position = 0;

  /** One forward of `tokens` `[B,n]` through the caches: the last position's logits `[B,V]`. */
  const run = async (tokens: Tensor, offset: number, scoreOffsets: number[], preRead: boolean): Promise<Tensor> => {
    let x: Tensor = keep(embedding(params.model.embeddings, tokens));
    const rope = layerRopeTables(c, tokens.shape[1], offset, x); // one pair for every layer's q and k
    try {
      for (let l = 0; l < params.model.layers.length; l++) {
        const layer = params.model.layers[l];
        const lc = layers[l];
        if (preRead) {
          // window 0: the new entry joins the candidates at once, so its scores are needed before the layer
          const u = tidy(() =>
            sparsekScores(layer.attn.score_proj as LinearParams, rmsNormLayer(layer.attn_norm, x, c.norm_eps), scoreOffsets),
          );
          try {
            lc.pushScores(await u.data());
          } finally {
            u.dispose();
          }
        }
        const prev: Tensor = x;
        x = keep(
          tidy(() => {
            const a = attentionLayer(layer.attn, rmsNormLayer(layer.attn_norm, prev, c.norm_eps), c, {
              cache: lc,
              offset,
              rope,
              scoreOffsets,
              impl: opts.impl,
            });
            const y = add(prev, a.out);
            return add(y, swiglu(layer.mlp, rmsNormLayer(layer.mlp_norm, y, c.norm_eps)));
          }),
        );
        prev.dispose();
      }
      const last = x;
      return tidy(() => {
        const n = tokens.shape[1];
        const hN = rmsNormLayer(params.model.norm, narrow(last, 1, n - 1, 1), c.norm_eps);
        const logits = params.lm_head ? applyLinear(params.lm_head, hN) : matmul(hN, transpose(params.model.embeddings.weight));
        return reshape(logits, [tokens.shape[0], V]);
      });
    } finally {
      x.dispose();
      if (rope) dispose([rope.cos, rope.sin]);
    }
  };

  const decoder: Decoder = {
    get batch() {
      return B;
    },
    get length() {
      return position;
    },
    async prefill(prompts) {
      if (layers.length) fail(OP, 'prefill was already called on this decoder');
      const ps = checkPrompts(OP, prompts, V);
      B = ps.length;
      const T = Math.max(...ps.map((p) => p.length));
      layers = params.model.layers.map(() => new SparsekLayerCache({ ...shape, B }));
      let out: Float32Array | Float64Array | null = null;
      for (let b = 0; b < B; b++) {
        for (const lc of layers) lc.beginPrefill(b);
        const tokens = tensor(Int32Array.from(ps[b]), [1, ps[b].length], { dtype: 'int32', backend: emb.backend });
        try {
          // each prompt alone (the SPARSEK kernel takes no pad mask), at buffer positions T − length …
          const logits = await run(tokens, T - ps[b].length, [0], false);
          try {
            const host = (await logits.data()) as Float32Array | Float64Array;
            out ??= host instanceof Float64Array ? new Float64Array(B * V) : new Float32Array(B * V);
            out.set(host, b * V);
          } finally {
            logits.dispose();
          }
        } finally {
          tokens.dispose();
        }
      }
      await Promise.all(layers.map((lc) => lc.finishPrefill()));
      position = T;
      return out as Float32Array | Float64Array;
    },
    async step(next) {
      if (!layers.length) fail(OP, 'step before prefill');
      if (!Array.isArray(next) || next.length !== B) fail(OP, `step takes one token per sequence (${B}), got ${String(next)}`);
      const tokens = tensor(Int32Array.from(next), [B, 1], { dtype: 'int32', backend: emb.backend });
      try {
        const logits = await run(tokens, position, [...layers[0].len], W === 0);
        try {
          const host = (await logits.data()) as Float32Array | Float64Array;
          await Promise.all(layers.map((lc) => lc.commit()));
          position++;
          return host;
        } finally {
          logits.dispose();
        }
      } finally {
        tokens.dispose();
      }
    },
    cacheStats(): CacheStats {
      const full = layers.length ? layers[0].len.reduce((a, n) => a + n, 0) : 0;
      const perLayer = layers.map((lc) => ({ ...lc.counts(), full }));
      return {
        kept: perLayer.reduce((s, p) => s + p.kept.reduce((a, b) => a + b, 0), 0),
        full: perLayer.reduce((s, p) => s + H * p.full, 0),
        perLayer,
        bytes: layers.reduce((s, lc) => s + lc.bytes(), 0),
      };
    },
    dispose() {
      for (const lc of layers) lc.dispose();
    },
  };
  return decoder;
}
