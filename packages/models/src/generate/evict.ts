import { fail, type Tensor } from '@foxgate/tensor';
import { headDim, type ModelConfig } from '../config.js';
import type { LinearParams } from '../layers/linear.js';
import type { ShiftLinearParams } from '../layers/shift.js';
import type { ModelParams } from '../model.js';

/**
 * ACP-based KV eviction. ACP prunes the pair (i, j) when Λ_i − Λ_j < δ with
 * δ = −(2U + log N) + log ε, where U bounds |scale·q·k| over every pair and N the keys a query
 * sees: the pruned weights of a row then sum to less than ε. Λ never increases, so a key pruned
 * for the current query is pruned for every later one, provided U holds for all future pairs
 * and N is the longest length of the generation: the cache may drop it for good.
 */

async function hostData(t: Tensor): Promise<Float64Array> {
  return Float64Array.from(await t.data());
}

function maxAbsPerHead(w: Float64Array, H: number, D: number): number[] {
  const shared = w.length === D;
  return Array.from({ length: H }, (_, h) => {
    let m = 0;
    for (let d = 0; d < D; d++) m = Math.max(m, Math.abs(w[shared ? d : h * D + d]));
    return m;
  });
}

/** ‖W_h · diag(g)‖_F per head for W `[H·D, h]` (rows of head h) and g `[h]`. */
function frobeniusPerHead(w: Float64Array, g: Float64Array, H: number, D: number): number[] {
  const hidden = g.length;
  return Array.from({ length: H }, (_, h) => {
    let s = 0;
    for (let r = h * D; r < (h + 1) * D; r++) for (let c = 0; c < hidden; c++) s += (w[r * hidden + c] * g[c]) ** 2;
    return Math.sqrt(s);
  });
}

function weightOf(p: LinearParams | ShiftLinearParams): Tensor {
  return 'shift_proj' in p ? p.linear.weight : p.weight;
}

/**
 * U per layer and head, a bound on |scale·q·k| for every query and key, from the weights alone:
 * - with QK-norm: q = g_q ⊙ n with ‖n‖ ≤ √D (RMS-normalised), so
 *   |scale·q·k| ≤ scale · √D·max|g_q| · √D·max|g_k| (per head: the head's slice of the gains);
 * - without: the input of the projections is g ⊙ n with n RMS-normalised (‖n‖ ≤ √h, g the
 *   attn_norm gain), so ‖q_h‖ ≤ ‖W_q,h·diag(g)‖₂·√h ≤ ‖W_q,h·diag(g)‖_F·√h, the same for k (the
 *   token shift mixes two such rows convexly), and RoPE rotates without changing norms:
 *   U = scale · h · ‖W_q,h·diag(g)‖_F · ‖W_k,h·diag(g)‖_F. Provable, but loose for trained weights.
 * Softmax models have no decay: eviction is refused with one line.
 */
export async function acpBounds(c: ModelConfig, params: ModelParams, op = 'generate'): Promise<number[][]> {
  if (c.fgate_type === 'none') {
    fail(
      op,
      `opts.kvEvict 'acp' needs forget gates, but model '${c.model}' has fgate_type 'none' (softmax attention never decays, so no key can be evicted safely)`,
    );
  }
  const H = c.num_heads;
  const D = headDim(c);
  const scale = 1 / Math.sqrt(D);
  const out: number[][] = [];
  for (const layer of params.model.layers) {
    const a = layer.attn;
    if (c.qk_norm && a.q_norm && a.k_norm) {
      const gq = maxAbsPerHead(await hostData(a.q_norm.weight), H, D);
      const gk = maxAbsPerHead(await hostData(a.k_norm.weight), H, D);
      out.push(gq.map((q, h) => scale * D * q * gk[h]));
    } else {
      const g = await hostData(layer.attn_norm.weight);
      const fq = frobeniusPerHead(await hostData(weightOf(a.q_proj)), g, H, D);
      const fk = frobeniusPerHead(await hostData(weightOf(a.k_proj)), g, H, D);
      out.push(fq.map((q, h) => scale * c.hidden_size * q * fk[h]));
    }
  }
  // float32 rounding of q·k is far below this margin
  return out.map((row) => row.map((u) => u * (1 + 1e-4)));
}

/** δ = −(2U + log N) + log ε. */
export function acpThreshold(U: number, N: number, logEps: number): number {
  return -(2 * U + Math.log(N)) + logEps;
}

/**
 * The host's record of Λ for one layer: Λ per (sequence, head) at every position, and the first
 * position each (b, h) still keeps. Pads are never kept.
 */
export class EvictionTracker {
  /** Λ history per (b, h): lam[b·H + h][position]. */
  private readonly lam: number[][];
  private readonly run: Float64Array;
  /** First kept absolute position per (b, h). */
  readonly first: Int32Array;
  len = 0;

  constructor(
    readonly B: number,
    readonly H: number,
    readonly delta: readonly number[],
    pads: readonly number[],
  ) {
    this.lam = Array.from({ length: B * H }, () => []);
    this.run = new Float64Array(B * H);
    this.first = Int32Array.from({ length: B * H }, (_, i) => pads[Math.floor(i / H)]);
  }

  /**
   * Adds this call's logF `[B,n,H]` (row-major) and returns the entries (b, position, h) that
   * the newest query's Λ now prunes for every later query. The newest key is never returned
   * (δ < 0).
   */
  push(logF: ArrayLike<number>, n: number): [number, number, number][] {
    const { B, H } = this;
    for (let b = 0; b < B; b++)
      for (let t = 0; t < n; t++)
        for (let h = 0; h < H; h++) {
          const i = b * H + h;
          this.run[i] += logF[(b * n + t) * H + h];
          this.lam[i].push(this.run[i]);
        }
    this.len += n;
    const evicted: [number, number, number][] = [];
    for (let b = 0; b < B; b++)
      for (let h = 0; h < H; h++) {
        const i = b * H + h;
        const lam = this.lam[i];
        const now = lam[this.len - 1];
        let j = this.first[i];
        while (j < this.len - 1 && now - lam[j] < this.delta[h]) evicted.push([b, j++, h]);
        this.first[i] = j;
      }
    return evicted;
  }

  /** The first position every (b, h) keeps. */
  firstKept(): number {
    let m = Number.POSITIVE_INFINITY;
    for (const f of this.first) m = Math.min(m, f);
    return m;
  }

  /** Kept entries per head, summed over the sequences. */
  keptPerHead(): number[] {
    const out = new Array<number>(this.H).fill(0);
    for (let b = 0; b < this.B; b++) for (let h = 0; h < this.H; h++) out[h] += this.len - this.first[b * this.H + h];
    return out;
  }
}
