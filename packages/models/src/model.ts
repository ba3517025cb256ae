import type { AcpOptions } from '@foxgate/attention';
import {
  type Backend,
  concat,
  crossEntropy,
  type DType,
  fail,
  fmtShape,
  full,
  getRecorder,
  itemSize,
  matmul,
  narrow,
  ne,
  type RngKeyLike,
  reshape,
  split,
  type Tensor,
  tidy,
  transpose,
  where,
  zeros,
} from '@foxgate/tensor';
import { type AttentionParams, attentionLayer, docResetOf, layerRopeTables } from './attention-layer.js';
import { checkTensor } from './check.js';
import { type ConfigInput, headDim, intermediateSize, type ModelConfig, modelConfig } from './config.js';
import { type EmbeddingParams, embedding, initEmbedding } from './layers/embedding.js';
import { applyLinear, initLinear, type LinearParams } from './layers/linear.js';
import { applyLinearCrossEntropy, lossChunkRows } from './layers/linear-cross-entropy.js';
import { addRmsNormLayer, initRMSNorm, type RMSNormParams, rmsNormLayer } from './layers/norm.js';
import { initShiftLinear } from './layers/shift.js';
import { initSwiGLU, type SwiGLUParams, swiglu } from './layers/swiglu.js';
import { countParams, paramShapes } from './shapes.js';
import { checkParams } from './tree-check.js';

export interface LayerParams {
  attn_norm: RMSNormParams;
  attn: AttentionParams;
  mlp_norm: RMSNormParams;
  mlp: SwiGLUParams;
}

/** A model's parameter tree: flattening it with dots gives the official state_dict names. */
export interface ModelParams {
  model: { embeddings: EmbeddingParams; layers: LayerParams[]; norm: RMSNormParams };
  /** Absent with `tie_word_embeddings` (the embedding is the output layer). */
  lm_head?: LinearParams;
}

export interface ForwardOptions {
  /** Adaptive Computation Pruning in every forgetting-attention layer (FoX models only). */
  acp?: boolean | AcpOptions;
  /** bool `[B,T]`, true where a packed document starts: forgetting attention and the token shift reset there. */
  docStarts?: Tensor;
  /** 'fused' kernels (default) or the composed 'reference' attention. */
  impl?: 'fused' | 'reference';
}

export interface ForwardStats {
  /** Per layer: the fraction of 64×64 attention tiles ACP pruned (float32 scalars; 0 without ACP). */
  pruned: Tensor[];
  /** Per layer: logF `[B,T,H]` (FoX models; empty for softmax models). */
  logF: Tensor[];
}

export interface LossOptions extends ForwardOptions {
  /** Targets equal to this carry no loss (default −100). */
  ignoreIndex?: number;
  /** bool/float/int `[B,T]`: 0 where a position carries no loss (e.g. everything but the response). */
  lossMask?: Tensor;
  /** `targets` are the inputs themselves (Hugging Face style): predict targets[t+1] at t. Default false: targets are aligned. */
  shift?: boolean;
  /** 'mean' over counted targets (default), 'sum', or 'none' (`[B,T]` per-token losses, 0 where not counted). */
  reduction?: 'mean' | 'sum' | 'none';
  /**
   * `loss` with 'mean' or 'sum': the LM head and the cross-entropy run fused, a chunk of rows at a
   * time (`linearCrossEntropy`), so the `[B,T,V]` logits and their gradient are never held.
   * Default true; false computes the full logits and `crossEntropy` of them (as `lossAndLogits`).
   */
  fusedLoss?: boolean;
  /** Rows (tokens) per chunk of the fused loss; default: as many as keep a chunk's logits within 256 MiB. */
  lossChunkRows?: number;
}

export interface InitModelOptions {
  dtype?: DType;
  backend?: string | Backend;
}

/** A model bound to its validated config: init, forward, loss. */
export interface Model {
  readonly config: ModelConfig;
  /** Parameters by the official names and shapes (`[out, in]` linear weights). */
  paramShapes(): Map<string, number[]>;
  countParams(): number;
  /** Weights N(0, initializer_range²), biases 0, norm weights 1; the same key gives the same weights on every backend. */
  init(key: RngKeyLike, opts?: InitModelOptions): ModelParams;
  /** `tokens` int32 `[B,T]` → logits `[B,T,V]`. */
  forward(params: ModelParams, tokens: Tensor, opts?: ForwardOptions): Tensor;
  /** The forward with per-layer stats (ACP pruned fraction, logF). The caller disposes the stats. */
  forwardWithStats(params: ModelParams, tokens: Tensor, opts?: ForwardOptions): { logits: Tensor; stats: ForwardStats };
  /** Cross-entropy of the forward's logits against `targets` int32 `[B,T]`. */
  lossAndLogits(params: ModelParams, tokens: Tensor, targets: Tensor, opts?: LossOptions): { loss: Tensor; logits: Tensor };
  loss(params: ModelParams, tokens: Tensor, targets: Tensor, opts?: LossOptions): Tensor;
}

/** `tidy` unless autograd is recording (the tape then owns the intermediates). */
function scoped<T>(fn: () => T): T {
  return getRecorder() ? fn() : tidy(fn);
}

function initParams(c: ModelConfig, key: RngKeyLike, opts: InitModelOptions): ModelParams {
  const std = c.initializer_range;
  const o = { dtype: opts.dtype, backend: opts.backend, std };
  const h = c.hidden_size;
  const H = c.num_heads;
  const [kEmb, kHead, ...kLayers] = split(key, 2 + c.num_hidden_layers);
  const layers: LayerParams[] = kLayers.map((k) => {
    const [kq, kk, kv, ko, kf, kg, kMlp] = split(k, 7);
    const attn: AttentionParams = {
      q_proj: initLinear(kq, h, h, o),
      k_proj: c.use_k_shift ? initShiftLinear(kk, h, H, o) : initLinear(kk, h, h, o),
      v_proj: c.use_v_shift ? initShiftLinear(kv, h, H, o) : initLinear(kv, h, h, o),
      o_proj: initLinear(ko, h, h, o),
    };
    if (c.fgate_type === 'full') attn.fgate_proj = initLinear(kf, h, H, { ...o, bias: true });
    // sparsek has no forget gate: its scoring network takes the gate's key (other models' weights unchanged)
    if (c.model === 'sparsek') attn.score_proj = initLinear(kf, h, H, { ...o, bias: true });
    if (c.use_output_gate) attn.ogate_proj = initLinear(kg, h, h, o);
    if (c.use_output_norm) attn.output_norm = initRMSNorm(h, o);
    if (c.qk_norm) {
      const n = c.qk_norm_share_param_across_head ? headDim(c) : h;
      attn.q_norm = initRMSNorm(n, o);
      attn.k_norm = initRMSNorm(n, o);
    }
    return { attn_norm: initRMSNorm(h, o), attn, mlp_norm: initRMSNorm(h, o), mlp: initSwiGLU(kMlp, h, intermediateSize(c), o) };
  });
  const params: ModelParams = {
    model: { embeddings: initEmbedding(kEmb, c.vocab_size, h, o), layers, norm: initRMSNorm(h, o) },
  };
  if (!c.tie_word_embeddings) params.lm_head = initLinear(kHead, h, c.vocab_size, o);
  return params;
}

function checkTokens(op: string, tokens: Tensor, params: ModelParams): [number, number] {
  checkTensor(op, 'tokens', tokens);
  if (tokens.dtype !== 'int32' || tokens.rank !== 2) fail(op, `tokens must be int32 [B,T], got ${tokens.dtype}${fmtShape(tokens.shape)}`);
  const w = params?.model?.embeddings?.weight;
  if (w && tokens.backend !== w.backend) fail(op, `tokens live on ${tokens.backend.name} but the parameters on ${w.backend.name}`);
  return [tokens.shape[0], tokens.shape[1]];
}

function checkForwardOptions(op: string, c: ModelConfig, opts: ForwardOptions, B: number, T: number): void {
  if (opts === null || typeof opts !== 'object') fail(op, 'opts must be an object');
  const known = new Set(['acp', 'docStarts', 'impl', 'ignoreIndex', 'lossMask', 'shift', 'reduction', 'fusedLoss', 'lossChunkRows']);
  for (const k of Object.keys(opts)) if (!known.has(k)) fail(op, `unknown option '${k}' (options: ${[...known].join(', ')})`);
  if (opts.acp && c.fgate_type === 'none') fail(op, `opts.acp needs forget gates, but model '${c.model}' has fgate_type 'none'`);
  if (opts.docStarts) {
    if (c.fgate_type === 'none') {
      fail(
        op,
        `opts.docStarts is not supported by softmax-attention models ('${c.model}'): pack without document resets or use a FoX model`,
      );
    }
    checkTensor(op, 'opts.docStarts', opts.docStarts);
    const d = opts.docStarts;
    if (d.dtype !== 'bool' || d.rank !== 2 || d.shape[0] !== B || d.shape[1] !== T) {
      fail(op, `opts.docStarts must be bool [${B},${T}], got ${d.dtype}${fmtShape(d.shape)}`);
    }
  }
}

/** The forward: logits, or (`head` false) the final normed hidden states `[B,T,D]` before the LM head. */
function run(c: ModelConfig, params: ModelParams, tokens: Tensor, opts: ForwardOptions, stats: boolean, op: string, head = true) {
  const [B, T] = checkTokens(op, tokens, params);
  checkForwardOptions(op, c, opts, B, T);
  checkParams(op, params, c);
  return scoped(() => {
    let x = embedding(params.model.embeddings, tokens);
    const docReset = opts.docStarts && (c.use_k_shift || c.use_v_shift) ? docResetOf(opts.docStarts, x) : null;
    // one pair of RoPE tables for every layer's q and k (a host computation and upload per forward, not per layer)
    const rope = layerRopeTables(c, T, 0, x);
    const pruned: Tensor[] = [];
    const logF: Tensor[] = [];
    // Each residual add runs fused with the norm after it (one kernel forward, one backward, no
    // gradient accumulation), and each intermediate is freed as soon as the next exists: under a
    // gradient the tape keeps what the backward needs, so the forward's peak holds no dead states.
    let pending: Tensor | null = null; // the last sublayer's output, not yet added to x
    const addNorm = (p: RMSNormParams): Tensor => {
      if (!pending) return rmsNormLayer(p, x, c.norm_eps);
      const [s, h] = addRmsNormLayer(p, x, pending, c.norm_eps);
      x.dispose();
      pending.dispose();
      pending = null;
      x = s;
      return h;
    };
    for (const layer of params.model.layers) {
      const hA = addNorm(layer.attn_norm);
      const a = attentionLayer(layer.attn, hA, c, {
        acp: opts.acp,
        impl: opts.impl,
        docStarts: opts.docStarts ?? null,
        docReset,
        rope,
        stats,
      });
      hA.dispose();
      pending = a.out;
      const hM = addNorm(layer.mlp_norm);
      pending = swiglu(layer.mlp, hM);
      hM.dispose();
      if (a.pruned) pruned.push(a.pruned);
      else if (stats) pruned.push(zeros([], { backend: x.backend }));
      if (a.logF) logF.push(a.logF);
    }
    const hN = addNorm(params.model.norm);
    x.dispose();
    if (!head) return { logits: hN, stats: { pruned, logF } };
    const logits = params.lm_head ? applyLinear(params.lm_head, hN) : matmul(hN, transpose(params.model.embeddings.weight));
    return { logits, stats: { pruned, logF } };
  });
}

function targetsFor(op: string, tokens: Tensor, targets: Tensor, opts: LossOptions): Tensor {
  checkTensor(op, 'targets', targets);
  if (targets.dtype !== 'int32' || targets.rank !== 2 || targets.shape[0] !== tokens.shape[0] || targets.shape[1] !== tokens.shape[1]) {
    fail(op, `targets must be int32 ${fmtShape(tokens.shape)} like tokens, got ${targets.dtype}${fmtShape(targets.shape)}`);
  }
  const ignore = opts.ignoreIndex ?? -100;
  let t = targets;
  if (opts.shift) {
    // predict targets[t+1] at t; the last position has no target
    const [B, T] = targets.shape;
    const next = narrow(targets, 1, 1, T - 1);
    const pad = full([B, 1], ignore, { dtype: 'int32', backend: targets.backend });
    t = concat([next, pad], 1);
  }
  if (opts.lossMask) {
    const m = opts.lossMask;
    checkTensor(op, 'opts.lossMask', m);
    if (m.rank !== 2 || m.shape[0] !== tokens.shape[0] || m.shape[1] !== tokens.shape[1]) {
      fail(op, `opts.lossMask must be ${fmtShape(tokens.shape)} like tokens, got ${m.dtype}${fmtShape(m.shape)}`);
    }
    t = where(m.dtype === 'bool' ? m : ne(m, 0), t, ignore);
  }
  return t;
}

function reductionOf(op: string, opts: LossOptions): 'mean' | 'sum' | 'none' {
  const red = opts.reduction ?? 'mean';
  if (red !== 'mean' && red !== 'sum' && red !== 'none') fail(op, `opts.reduction must be 'mean', 'sum' or 'none', got ${String(red)}`);
  return red;
}

/** Builds a model from a (partial) config: `createModel({ model: 'foxPro', preset: 'tiny' })`. */
export function createModel(input: ConfigInput | ModelConfig): Model {
  const c = modelConfig(input as ConfigInput);
  const lossAndLogits = (params: ModelParams, tokens: Tensor, targets: Tensor, opts: LossOptions = {}) => {
    const op = 'lossAndLogits';
    const { logits } = run(c, params, tokens, opts, false, op);
    const red = reductionOf(op, opts);
    const loss = scoped(() =>
      crossEntropy(logits, targetsFor(op, tokens, targets, opts), { ignoreIndex: opts.ignoreIndex ?? -100, reduction: red }),
    );
    return { loss, logits };
  };
  /** The loss through `linearCrossEntropy`: the final hidden states and the head's weight, chunk by chunk. */
  const fusedLoss = (params: ModelParams, tokens: Tensor, targets: Tensor, opts: LossOptions, red: 'mean' | 'sum') => {
    const op = 'lossAndLogits';
    const { logits: hN } = run(c, params, tokens, opts, false, op, false);
    try {
      return scoped(() => {
        const t = targetsFor(op, tokens, targets, opts);
        const [B, T, D] = hN.shape;
        const h = reshape(hN, [B * T, D]);
        const w = params.lm_head ? params.lm_head.weight : params.model.embeddings.weight;
        const chunk = lossChunkRows(op, 'opts.lossChunkRows', w.shape[0], itemSize(w.dtype), opts.lossChunkRows);
        return applyLinearCrossEntropy(h, w, params.lm_head?.bias, reshape(t, [B * T]), {
          ignoreIndex: opts.ignoreIndex ?? -100,
          reduction: red,
          chunk,
        });
      });
    } finally {
      hN.dispose();
    }
  };
  return {
    config: c,
    paramShapes: () => paramShapes(c),
    countParams: () => countParams(c),
    init: (key, opts = {}) => initParams(c, key, opts),
    forward: (params, tokens, opts = {}) => {
      const { logits, stats } = run(c, params, tokens, opts, false, 'forward');
      for (const t of [...stats.pruned, ...stats.logF]) t.dispose();
      return logits;
    },
    forwardWithStats: (params, tokens, opts = {}) => run(c, params, tokens, opts, true, 'forwardWithStats'),
    lossAndLogits,
    loss: (params, tokens, targets, opts = {}) => {
      const op = 'lossAndLogits';
      if (opts !== null && typeof opts === 'object') {
        const red = reductionOf(op, opts);
        if (opts.fusedLoss !== undefined && typeof opts.fusedLoss !== 'boolean')
          fail(op, `opts.fusedLoss must be a boolean, got ${String(opts.fusedLoss)}`);
        if (opts.lossChunkRows !== undefined) lossChunkRows(op, 'opts.lossChunkRows', c.vocab_size, 4, opts.lossChunkRows);
        if (opts.fusedLoss !== false && red !== 'none') return fusedLoss(params, tokens, targets, opts, red);
      }
      const { loss, logits } = lossAndLogits(params, tokens, targets, opts);
      logits.dispose();
      return loss;
    },
  };
}
