import { DEFAULT_LOG_EPS } from '@foxgate/attention';
import { add, dispose, fail, matmul, narrow, reshape, type Tensor, tensor, tidy, transpose } from '@foxgate/tensor';
import { attentionLayer, layerRopeTables } from '../attention-layer.js';
import { headDim } from '../config.js';
import { embedding } from '../layers/embedding.js';
import { applyLinear } from '../layers/linear.js';
import { rmsNormLayer } from '../layers/norm.js';
import { swiglu } from '../layers/swiglu.js';
import type { Model, ModelParams } from '../model.js';
import { checkParams } from '../tree-check.js';
import { type CacheShape, type CallState, keyColumnFor, LayerCache } from './cache.js';
import { acpBounds, acpThreshold, EvictionTracker } from './evict.js';
import { createSparsekDecoder } from './sparsek-decoder.js';

export interface DecoderOptions {
  /** 'none' (default) keeps every key; 'acp' evicts keys that ACP prunes for every later query (FoX models). */
  kvEvict?: 'none' | 'acp';
  /** log ε of the eviction bound (≤ 0, default −10). */
  acpLogEps?: number;
  /** The longest length (prompt + new tokens) the decoder will reach: N of the eviction threshold. Required with 'acp'. */
  maxLength?: number;
  /** 'fused' (default) or 'reference' attention. */
  impl?: 'fused' | 'reference';
}

/** Cache entries kept vs the full length: totals and, per layer, per head (summed over the batch). */
export interface CacheStats {
  kept: number;
  full: number;
  /** `selected` (model 'sparsek'): of the kept entries, those older than the window (the support of the newest query). */
  perLayer: { kept: number[]; full: number; selected?: number[] }[];
  /** Bytes the cache buffers hold (allocated capacity, all layers). */
  bytes: number;
}

/**
 * Incremental decoding with a KV cache: `prefill(prompts)` runs the prompts (left-padded into
 * one batch; model 'sparsek': one prompt at a time) and returns the last position's logits;
 * `step(tokens)` appends one token per sequence and returns the next logits. Logits come back to the host as `[B·V]` row-major.
 * `dispose()` frees the cache.
 */
export interface Decoder {
  readonly batch: number;
  prefill(prompts: readonly (readonly number[] | Int32Array)[]): Promise<Float32Array | Float64Array>;
  step(tokens: readonly number[]): Promise<Float32Array | Float64Array>;
  /** Positions so far (padded prompt length + steps). */
  readonly length: number;
  cacheStats(): CacheStats;
  dispose(): void;
}

const OP = 'generate';

/** Checks the prompts and returns them as number arrays. */
export function checkPrompts(op: string, prompts: unknown, vocab: number): number[][] {
  if (!Array.isArray(prompts) || prompts.length === 0) fail(op, 'prompts must be a non-empty array of token id arrays');
  return prompts.map((p, i) => {
    if (!(Array.isArray(p) || p instanceof Int32Array) || p.length === 0) fail(op, `prompts[${i}] must be a non-empty array of token ids`);
    const a = Array.from(p as ArrayLike<number>);
    const bad = a.findIndex((t) => !Number.isInteger(t) || t < 0 || t >= vocab);
    if (bad >= 0) fail(op, `prompts[${i}][${bad}] = ${String(a[bad])} is not a token id in [0, ${vocab})`);
    return a;
  });
}

/** Creates a decoder for `model` with `params` (read once for the eviction bounds). */
export async function createDecoder(model: Model, params: ModelParams, opts: DecoderOptions = {}): Promise<Decoder> {
  const c = model.config;
  checkParams(OP, params, c);
  if (c.model === 'sparsek') return createSparsekDecoder(model, params, opts);
  const evict = opts.kvEvict ?? 'none';
  if (evict !== 'none' && evict !== 'acp') fail(OP, `opts.kvEvict must be 'none' or 'acp', got ${JSON.stringify(evict)}`);
  const logEps = opts.acpLogEps ?? DEFAULT_LOG_EPS;
  if (typeof logEps !== 'number' || !Number.isFinite(logEps) || logEps > 0) {
    fail(OP, `opts.acpLogEps must be a finite number ≤ 0, got ${String(logEps)}`);
  }
  const bounds = evict === 'acp' ? await acpBounds(c, params, OP) : null;
  if (bounds && !(Number.isInteger(opts.maxLength) && (opts.maxLength as number) > 0)) {
    fail('createDecoder', `opts.maxLength (prompt + new tokens) is needed with kvEvict 'acp', got ${String(opts.maxLength)}`);
  }
  const emb = params.model.embeddings.weight;
  const H = c.num_heads;
  const D = headDim(c);
  const V = c.vocab_size;
  const create = { dtype: emb.dtype, backend: emb.backend };
  let layers: LayerCache[] = [];
  let trackers: EvictionTracker[] | null = null;
  let B = 0;
  let position = 0;
  let pads: number[] = [];
  const call: CallState = { pad: null, keyColumn: null };

  /** One forward over `tokens` `[B,n]` through the caches: logits of the last position `[B,V]`. */
  const forward = (tokens: Tensor, reset: Tensor | null): Tensor =>
    tidy(() => {
      const n = tokens.shape[1];
      let x = embedding(params.model.embeddings, tokens);
      const rope = layerRopeTables(c, n, position, x); // one pair for every layer's q and k
      params.model.layers.forEach((layer, l) => {
        const a = attentionLayer(layer.attn, rmsNormLayer(layer.attn_norm, x, c.norm_eps), c, {
          cache: layers[l],
          offset: position,
          rope,
          docReset: reset,
          impl: opts.impl,
        });
        x = add(x, a.out);
        x = add(x, swiglu(layer.mlp, rmsNormLayer(layer.mlp_norm, x, c.norm_eps)));
      });
      const hN = rmsNormLayer(params.model.norm, narrow(x, 1, n - 1, 1), c.norm_eps);
      const logits = params.lm_head ? applyLinear(params.lm_head, hN) : matmul(hN, transpose(params.model.embeddings.weight));
      return reshape(logits, [tokens.shape[0], V]);
    });

  /** Runs a call, reads the logits (and logF for eviction), applies eviction. */
  const runCall = async (tokens: Tensor, reset: Tensor | null): Promise<Float32Array | Float64Array> => {
    const n = tokens.shape[1];
    const logits = forward(tokens, reset);
    position += n;
    try {
      const host = (await logits.data()) as Float32Array | Float64Array;
      if (trackers) {
        const lfs = await Promise.all(layers.map((lc) => (lc.lastLogF as Tensor).data()));
        layers.forEach((lc, l) => {
          const tr = (trackers as EvictionTracker[])[l];
          lc.mask(tr.push(lfs[l], n));
          lc.dropBefore(tr.firstKept());
        });
      }
      return host;
    } finally {
      logits.dispose();
    }
  };

  const clearCall = () => {
    dispose([call.pad, call.keyColumn]);
    call.pad = call.keyColumn = null;
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
      pads = ps.map((p) => T - p.length);
      const ragged = pads.some((p) => p > 0);
      const shape: CacheShape = {
        B,
        H,
        D,
        dtype: emb.dtype,
        backend: emb.backend,
        impl: opts.impl ?? 'fused',
        masked: ragged || bounds !== null,
        fox: c.fgate_type === 'full',
        trackLogF: bounds !== null,
      };
      layers = params.model.layers.map(() => new LayerCache(shape, call));
      if (bounds) {
        const N = Math.max(opts.maxLength as number, T + 1);
        trackers = bounds.map(
          (u) =>
            new EvictionTracker(
              B,
              H,
              u.map((U) => acpThreshold(U, N, logEps)),
              pads,
            ),
        );
      }
      const ids = new Int32Array(B * T);
      for (let b = 0; b < B; b++) ids.set(ps[b], b * T + pads[b]);
      const tokens = tensor(ids, [B, T], { dtype: 'int32', backend: emb.backend });
      let reset: Tensor | null = null;
      if (ragged) {
        const padMask = ps.map((_, b) => Array.from({ length: T }, (_, t) => t < pads[b]));
        const flat = Uint8Array.from(padMask.flat(), (p) => (p ? 1 : 0));
        call.pad = tensor(flat, [B, T, 1], { dtype: 'bool', backend: emb.backend });
        call.keyColumn = keyColumnFor(padMask, H, D, create);
        if (c.use_k_shift || c.use_v_shift) {
          // the token shift starts afresh at each prompt's first token (the pad before it is not its past)
          const r = new Float64Array(B * T);
          for (let b = 0; b < B; b++) r[b * T + pads[b]] = 1;
          reset = tensor(emb.dtype === 'float64' ? r : Float32Array.from(r), [B, T], create);
        }
      }
      try {
        return await runCall(tokens, reset);
      } finally {
        clearCall();
        dispose([tokens, reset]);
      }
    },
    async step(next) {
      if (!layers.length) fail(OP, 'step before prefill');
      if (!Array.isArray(next) || next.length !== B) fail(OP, `step takes one token per sequence (${B}), got ${String(next)}`);
      const tokens = tensor(Int32Array.from(next), [B, 1], { dtype: 'int32', backend: emb.backend });
      try {
        return await runCall(tokens, null);
      } finally {
        tokens.dispose();
      }
    },
    cacheStats() {
      const perLayer = layers.map((_, l) => {
        const full = pads.reduce((s, p) => s + (position - p), 0);
        const kept = trackers ? trackers[l].keptPerHead() : new Array<number>(H).fill(full);
        return { kept, full };
      });
      return {
        kept: perLayer.reduce((s, p) => s + p.kept.reduce((a, b) => a + b, 0), 0),
        full: perLayer.reduce((s, p) => s + H * p.full, 0),
        perLayer,
        bytes: layers.reduce((s, lc) => s + lc.bytes(), 0),
      };
    },
    dispose() {
      for (const lc of layers) lc.dispose();
      clearCall();
    },
  };
  return decoder;
}
