import { customOp, noGrad } from '@foxgate/autograd';
import {
  cast,
  contiguous,
  cumsum,
  expand,
  fail,
  full,
  logicalAnd,
  lt,
  max,
  mul,
  reshape,
  sqrt,
  sub,
  sum,
  type Tensor,
  take,
  tensor,
  type WebGPUBackend,
} from '@foxgate/tensor';
import { scoped } from '../scope.js';
import { acpDeltaFromBound } from './acp.js';
import { BLOCK_K, BLOCK_Q, causalBlockCount, diagKeyBlock, type FoxDims, numBlocks } from './blocks.js';
import { type FloatArray, foxBackwardCpu, foxForwardCpu } from './cpu.js';
import { foxReference } from './reference.js';
import { checkDelta, checkImpl, checkLogEps, checkQKV, checkScale } from './validate.js';
import { acpBoundsWebGPU, foxBackwardWebGPU, foxDeltaWebGPU, foxDlogfWebGPU, foxForwardWebGPU } from './webgpu.js';

export interface AcpOptions {
  /** log ε, the bound on the attention mass pruned per row (default −10). Must be ≤ 0. */
  logEps?: number;
  /**
   * The pruning threshold δ itself (a Tensor broadcastable to `[B,H]`, or a number). Default:
   * `δ = −(2U + log Tk) + logEps` with `U = max‖q‖·max‖k‖·scale` per (b, h).
   */
  delta?: Tensor | number;
}

export interface AttentionOptions {
  /** Score scale (default `1/√D`). */
  scale?: number;
  /** Also return how many query×key tiles were computed (see `AttentionStats`). */
  stats?: boolean;
  /** 'fused' (default: the CPU or WGSL kernels) or 'reference' (composed ops, `[T,T]` scores). */
  impl?: 'fused' | 'reference';
}

export interface ForgettingAttentionOptions extends AttentionOptions {
  /** Adaptive Computation Pruning: off by default; `true` or options turn it on. */
  acp?: boolean | AcpOptions;
}

/**
 * Work statistics on the 64×64 tile grid (the ACP grid): tiles computed out of the tiles a causal
 * kernel visits. Tensors are float32 scalars on the inputs' backend; the caller disposes them.
 */
export interface AttentionStats {
  computedBlocks: Tensor;
  totalBlocks: number;
  /** `computedBlocks / totalBlocks` (1 without pruning). */
  fraction: Tensor;
}

export interface AttentionResult {
  out: Tensor;
  stats: AttentionStats;
}

interface FoxAttrs {
  dims: FoxDims;
  scale: number;
  gated: boolean;
  acp: boolean;
  stats: boolean;
}

const OP = 'forgettingAttention';

function arr(t: Tensor): FloatArray {
  return t.dataSync() as FloatArray;
}

function fromArray(a: FloatArray, shape: number[], like: Tensor): Tensor {
  return tensor(a, shape, { dtype: like.dtype, backend: like.backend });
}

function isWebGPU(t: Tensor): boolean {
  return t.backend.name === 'webgpu';
}

/** The fused op: inputs `[q, k, v, logF?, delta?]`, outputs `[o, computedBlocks?]`. */
const fusedOp = customOp<FoxAttrs>({
  name: OP,
  forward(inputs, a) {
    const [q, k, v] = inputs;
    const logF = a.gated ? inputs[3] : null;
    const delta = a.acp ? inputs[a.gated ? 4 : 3] : null;
    const { dims } = a;
    const total = dims.B * dims.H * causalBlockCount(dims, BLOCK_Q, BLOCK_K);
    if (isWebGPU(q)) {
      const backend = q.backend as unknown as WebGPUBackend;
      const lam = logF ? cumsum(logF, 1) : null;
      const bounds = lam && delta ? acpBoundsWebGPU(backend, lam, delta, dims) : null;
      const { o, lse2 } = foxForwardWebGPU(backend, q, k, v, lam, bounds, dims, a.scale);
      const saved = [lse2, ...(lam ? [lam] : []), ...(bounds ? [bounds.first, bounds.lastq] : [])];
      const outputs = [o];
      if (a.stats) outputs.push(bounds ? cast(sum(bounds.count), 'float32') : full([], total, { backend: q.backend }));
      return { outputs, saved };
    }
    const res = foxForwardCpu(arr(q), arr(k), arr(v), logF ? arr(logF) : null, dims, { scale: a.scale, delta: delta ? arr(delta) : null });
    const outputs = [fromArray(res.o, [...q.shape], q)];
    if (a.stats) outputs.push(full([], res.computedBlocks, { backend: q.backend }));
    return { outputs, saved: [fromArray(res.lse, [dims.B, dims.H, dims.Tq], q)] };
  },
  backward(gout, saved, inputs, outputs, a) {
    const [q, k, v] = inputs;
    const logF = a.gated ? inputs[3] : null;
    const delta = a.acp ? inputs[a.gated ? 4 : 3] : null;
    const dO = gout[0];
    if (!dO) return inputs.map(() => null);
    const { dims } = a;
    if (isWebGPU(q)) {
      const backend = q.backend as unknown as WebGPUBackend;
      const [lse2, ...rest] = saved;
      const lam = a.gated ? rest[0] : null;
      const bounds = a.acp && a.gated ? { first: rest[1], lastq: rest[2] } : null;
      const rowD = foxDeltaWebGPU(backend, outputs[0], dO, dims);
      const g = foxBackwardWebGPU(backend, q, k, v, dO, lse2, rowD, lam, bounds, dims, a.scale);
      let dlogF: Tensor | null = null;
      if (g.colsum) dlogF = foxDlogfWebGPU(backend, g.rowsum, g.colsum, dims);
      return [g.dq, g.dk, g.dv, ...(a.gated ? [dlogF] : []), ...(a.acp ? [null] : [])];
    }
    const g = foxBackwardCpu(arr(q), arr(k), arr(v), logF ? arr(logF) : null, arr(outputs[0]), arr(saved[0]), arr(dO), dims, {
      scale: a.scale,
      delta: delta ? arr(delta) : null,
    });
    const res: (Tensor | null)[] = [fromArray(g.dq, [...q.shape], q), fromArray(g.dk, [...k.shape], q), fromArray(g.dv, [...v.shape], q)];
    if (a.gated && g.dlogF) res.push(fromArray(g.dlogF, [dims.B, dims.Tk, dims.H], q));
    if (a.acp) res.push(null);
    return res;
  },
});

/** The per-(b, h) ACP threshold as a flat `[B·H]` tensor of q's dtype (never differentiated). */
function resolveDelta(q: Tensor, k: Tensor, dims: FoxDims, scale: number, acp: AcpOptions): Tensor {
  const { B, H, Tk } = dims;
  const given = acp.delta;
  if (typeof given === 'number') return full([B * H], given, { dtype: q.dtype, backend: q.backend });
  if (given) {
    const d = given.dtype === q.dtype ? given : cast(given, q.dtype);
    return reshape(contiguous(expand(d, [B, H])), [B * H]);
  }
  const logEps = checkLogEps(OP, acp.logEps);
  const maxNorm = (x: Tensor) => sqrt(max(sum(mul(x, x), -1), 1)); // [B,H]
  const u = mul(mul(maxNorm(q), maxNorm(k)), Math.abs(scale));
  // δ = −(2U + log Tk) + log ε  =  c − 2U
  const c = acpDeltaFromBound(0, Tk, logEps);
  return reshape(sub(full([], c, { dtype: q.dtype, backend: q.backend }), mul(u, 2)), [B * H]);
}

/**
 * Tiles computed by the composed reference (same grid and bounds as the kernels): a 64×64 tile
 * before the diagonal tile of its query tile is pruned when `Λ(first query) − Λ(last key) < δ`.
 */
function referenceStats(logF: Tensor | null, delta: Tensor | null, dims: FoxDims, backend: Tensor['backend']): Tensor {
  const { B, H, Tq, Tk } = dims;
  const total = B * H * causalBlockCount(dims, BLOCK_Q, BLOCK_K);
  if (!logF || !delta) return full([], total, { backend });
  const nqb = numBlocks(Tq, BLOCK_Q);
  const nkb = numBlocks(Tk, BLOCK_K);
  const p0 = new Int32Array(nqb);
  const kEnd = new Int32Array(nkb);
  const before = new Uint8Array(nqb * nkb);
  for (let qb = 0; qb < nqb; qb++) {
    p0[qb] = qb * BLOCK_Q + Tk - Tq;
    const diag = diagKeyBlock(qb, dims, BLOCK_Q, BLOCK_K);
    for (let kb = 0; kb < diag; kb++) before[qb * nkb + kb] = 1;
  }
  for (let kb = 0; kb < nkb; kb++) kEnd[kb] = Math.min((kb + 1) * BLOCK_K, Tk) - 1;
  const lam = cumsum(logF, 1); // [B,Tk,H]
  const lq = reshape(take(lam, tensor(p0, [nqb], { dtype: 'int32', backend }), 1), [B, nqb, 1, H]);
  const lk = reshape(take(lam, tensor(kEnd, [nkb], { dtype: 'int32', backend }), 1), [B, 1, nkb, H]);
  const d = reshape(delta, [B, 1, 1, H]);
  const pruned = logicalAnd(lt(sub(lq, lk), d), reshape(tensor(before, [nqb, nkb, 1], { dtype: 'bool', backend }), [1, nqb, nkb, 1]));
  return sub(full([], total, { backend }), sum(cast(pruned, 'float32')));
}

function withStats(out: Tensor, computed: Tensor, dims: FoxDims): AttentionResult {
  const totalBlocks = dims.B * dims.H * causalBlockCount(dims, BLOCK_Q, BLOCK_K);
  const computedBlocks = computed.dtype === 'float32' ? computed : cast(computed, 'float32');
  const fraction = noGrad(() => mul(computedBlocks, totalBlocks > 0 ? 1 / totalBlocks : 0));
  return { out, stats: { computedBlocks, totalBlocks, fraction } };
}

function run(
  op: string,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  logF: Tensor | null,
  dims: FoxDims,
  opts: ForgettingAttentionOptions,
): Tensor | AttentionResult {
  const scale = checkScale(op, opts.scale, dims.D);
  const impl = checkImpl(op, opts.impl);
  const acpOpts: AcpOptions | null = opts.acp === true ? {} : opts.acp ? opts.acp : null;
  if (opts.acp !== undefined && opts.acp !== true && opts.acp !== false && (typeof opts.acp !== 'object' || opts.acp === null)) {
    fail(op, `opts.acp must be a boolean or { logEps?, delta? }, got ${JSON.stringify(opts.acp)}`);
  }
  if (acpOpts) {
    checkLogEps(op, acpOpts.logEps);
    if (acpOpts.delta !== undefined) checkDelta(op, acpOpts.delta, q, dims);
  }
  const stats = opts.stats === true;
  if (dims.Tq === 0 || dims.B * dims.H === 0) {
    const out = mul(q, 0);
    return stats ? withStats(out, full([], 0, { backend: q.backend }), dims) : out;
  }
  const delta = acpOpts && logF ? noGrad(() => scoped(() => resolveDelta(q, k, dims, scale, acpOpts))) : null;
  const fused = impl === 'fused' && (q.backend.name === 'cpu' || q.backend.name === 'webgpu');
  if (!fused) {
    const out = foxReference(q, k, v, logF, dims, { scale, delta, blockQ: BLOCK_Q, blockK: BLOCK_K });
    if (!stats) {
      delta?.dispose();
      return out;
    }
    const computed = noGrad(() => scoped(() => referenceStats(logF, delta, dims, q.backend)));
    delta?.dispose();
    return withStats(out, computed, dims);
  }
  const inputs = [q, k, v, ...(logF ? [logF] : []), ...(delta ? [delta] : [])];
  const [out, computed] = fusedOp(inputs, { dims, scale, gated: logF !== null, acp: delta !== null, stats });
  delta?.dispose();
  return stats ? withStats(out, computed, dims) : out;
}

/**
 * Forgetting attention (FoX): `o_i = Σ_j softmax_j(scale·q_i·k_j + Λ_i − Λ_j) v_j` over `j ≤ i`,
 * with `Λ = cumsum(logF)` over time. `q [B,Tq,H,D]`, `k, v [B,Tk,H,D]`, `logF [B,Tk,H]` (log forget
 * gates, ≤ 0); `Tq ≤ Tk`, queries aligned to the last Tq keys. Differentiable in q, k, v, logF.
 */
export function forgettingAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  logF: Tensor,
  opts: ForgettingAttentionOptions & { stats: true },
): AttentionResult;
export function forgettingAttention(q: Tensor, k: Tensor, v: Tensor, logF: Tensor, opts?: ForgettingAttentionOptions): Tensor;
export function forgettingAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  logF: Tensor,
  opts: ForgettingAttentionOptions = {},
): Tensor | AttentionResult {
  const dims = checkQKV(OP, q, k, v, logF);
  if (opts === null || typeof opts !== 'object') fail(OP, `opts must be an object, got ${String(opts)}`);
  return run(OP, q, k, v, logF, dims, opts);
}

/** Causal softmax attention, the same kernels without a forget gate (Λ ≡ 0). */
export function softmaxAttention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions & { stats: true }): AttentionResult;
export function softmaxAttention(q: Tensor, k: Tensor, v: Tensor, opts?: AttentionOptions): Tensor;
export function softmaxAttention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor | AttentionResult {
  const op = 'softmaxAttention';
  const dims = checkQKV(op, q, k, v);
  if (opts === null || typeof opts !== 'object') fail(op, `opts must be an object, got ${String(opts)}`);
  if ((opts as ForgettingAttentionOptions).acp) fail(op, 'opts.acp needs forget gates: use forgettingAttention');
  return run(op, q, k, v, null, dims, opts);
}
