import { noGrad } from '@foxgate/autograd';
import {
  cast,
  contiguous,
  expand,
  fail,
  full,
  gt,
  max,
  mul,
  reshape,
  sqrt,
  sub,
  sum,
  type Tensor,
  WebGPUBackend,
  where,
} from '@foxgate/tensor';
import { type AttentionOptions, emptyResult, parseOptions } from '../options.js';
import { scoped } from '../scope.js';
import { type AttentionResult, withStats } from '../stats.js';
import type { FoxDims } from '../tiles.js';
import { checkDelta, checkKeys, checkLogEps, checkQKV } from '../validate.js';
import { acpDeltaFromBound } from './acp.js';
import { forgettingOp } from './op.js';

export interface AcpOptions {
  /** log ε, the bound on the attention mass pruned per row (default −10). Must be ≤ 0. */
  logEps?: number;
  /**
   * The pruning threshold δ itself (a Tensor broadcastable to `[B,H]`, or a number). Default:
   * `δ = −(2U + log Tk) + logEps` with `U = max‖q‖·max‖k‖·scale` per (b, h).
   */
  delta?: Tensor | number;
}

export interface ForgettingAttentionOptions extends AttentionOptions {
  /**
   * Adaptive Computation Pruning: off by default; `true` or options turn it on. Pruning works on
   * 64×64 tiles (`ACP_TILE`): sequences of at most 64 positions prune nothing.
   */
  acp?: boolean | AcpOptions;
}

const OP = 'forgettingAttention';

const POSITIVE_LOGF = 'but ACP needs logF ≤ 0 (log of a gate in (0, 1)): pass logsigmoid of the gate logits, or acp: false';

/**
 * The per-(b, h) ACP threshold as a flat `[B·H]` tensor of q's dtype (never differentiated).
 * Pruning assumes logF ≤ 0 (Λ non-increasing), so positive values are an error: on the CPU at
 * once; on WebGPU, where looking would need a readback, by a deferred device check that throws
 * at the next readback (`checkLater`), while the threshold becomes −∞ for the call (nothing
 * pruned: no result is wrong before the error surfaces).
 */
function resolveDelta(q: Tensor, k: Tensor, logF: Tensor, dims: FoxDims, scale: number, acp: AcpOptions): Tensor {
  const { B, H, Tk } = dims;
  const top = max(logF);
  if (q.backend.name === 'cpu') {
    const m = top.itemSync();
    if (m > 0) fail(OP, `logF has positive values (max ${m}) ${POSITIVE_LOGF}`);
  } else if (q.backend instanceof WebGPUBackend) {
    q.backend.checkLater(gt(top, 0), OP, `logF has positive values ${POSITIVE_LOGF} (checked at the next readback)`);
  }
  const given = acp.delta;
  let delta: Tensor;
  if (typeof given === 'number') delta = full([B * H], given, { dtype: q.dtype, backend: q.backend });
  else if (given) {
    const d = given.dtype === q.dtype ? given : cast(given, q.dtype);
    delta = reshape(contiguous(expand(d, [B, H])), [B * H]);
  } else {
    const logEps = checkLogEps(OP, acp.logEps);
    const maxNorm = (x: Tensor) => sqrt(max(sum(mul(x, x), -1), 1)); // [B,H]
    const u = mul(mul(maxNorm(q), maxNorm(k)), Math.abs(scale));
    // δ = −(2U + log Tk) + log ε  =  c − 2U
    const c = acpDeltaFromBound(0, Tk, logEps);
    delta = reshape(sub(full([], c, { dtype: q.dtype, backend: q.backend }), mul(u, 2)), [B * H]);
  }
  return q.backend.name === 'cpu' ? delta : where(gt(top, 0), Number.NEGATIVE_INFINITY, delta);
}

function parseAcp(acp: unknown, q: Tensor, dims: FoxDims): AcpOptions | null {
  if (acp === undefined || acp === false) return null;
  if (acp === true) return {};
  if (acp === null || typeof acp !== 'object' || Array.isArray(acp)) {
    fail(OP, `opts.acp must be a boolean or { logEps?, delta? }, got ${JSON.stringify(acp)}`);
  }
  checkKeys(OP, acp, ['logEps', 'delta'], 'opts.acp');
  const a = acp as AcpOptions;
  checkLogEps(OP, a.logEps);
  if (a.delta !== undefined) checkDelta(OP, a.delta, q, dims);
  return a;
}

/**
 * Forgetting attention (FoX): `o_i = Σ_j softmax_j(scale·q_i·k_j + Λ_i − Λ_j) v_j` over `j ≤ i`
 * (with `window`: the last `window` positions only), with `Λ = cumsum(logF)` over time.
 * `q [B,Tq,H,D]`, `k, v [B,Tk,H,D]`, `logF [B,Tk,H]` (log forget gates, ≤ 0); `Tq ≤ Tk`,
 * queries aligned to the last Tq keys. Differentiable in q, k, v, logF.
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
  const o = parseOptions(OP, opts, dims, ['acp']);
  const acp = parseAcp(opts.acp, q, dims);
  if (dims.Tq === 0 || dims.B * dims.H === 0) return emptyResult(q, dims, o.stats);
  const delta = acp ? noGrad(() => scoped(() => resolveDelta(q, k, logF, dims, o.scale, acp))) : null;
  const attrs = { dims, scale: o.scale, stats: o.stats, deterministic: o.deterministic, window: o.window };
  const [out, computed] = forgettingOp([q, k, v, logF, delta], attrs, o.impl);
  delta?.dispose();
  return o.stats ? withStats(out, computed, dims) : out;
}
