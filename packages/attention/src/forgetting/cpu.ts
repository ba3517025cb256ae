import { acpFirstBlocks, BLOCK_K, BLOCK_Q, type FoxDims, lastKeyBlock, numBlocks } from './blocks.js';

/**
 * Fused forgetting attention on the CPU, on plain typed arrays in the `[B,T,H,D]` layout.
 * Blocked over query and key tiles with an online softmax (no `[T,T]` buffer); the forward saves
 * the per-row log-normaliser, the backward recomputes the scores tile by tile from it.
 * Arithmetic is in float64; Λ is accumulated in the inputs' precision (float32 inputs: a float32
 * cumulative sum, as on the GPU).
 */

export type FloatArray = Float32Array | Float64Array;

export interface FoxCpuOptions {
  scale: number;
  /** ACP threshold per (b, h) (`B·H` values, row-major); absent: nothing is pruned. */
  delta?: ArrayLike<number> | null;
  blockQ?: number;
  blockK?: number;
}

export interface FoxCpuForward {
  /** `[B,Tq,H,D]`, the inputs' array type. */
  o: FloatArray;
  /** Log-normaliser per row, `[B,H,Tq]`: `lse_i = log Σ_j exp(s_ij)`. */
  lse: FloatArray;
  /** Query×key tiles computed, and tiles a causal kernel without pruning visits (all heads). */
  computedBlocks: number;
  totalBlocks: number;
}

export interface FoxCpuBackward {
  dq: FloatArray;
  dk: FloatArray;
  dv: FloatArray;
  /** `[B,Tk,H]`; null when no forget gate was given. */
  dlogF: FloatArray | null;
}

function like(a: FloatArray, n: number): FloatArray {
  return a instanceof Float32Array ? new Float32Array(n) : new Float64Array(n);
}

/**
 * Λ = inclusive cumsum of logF over time, laid out `[B,H,Tk]`; zeros without gates.
 * `f32` rounds every partial sum to float32.
 */
export function lambdaCpu(logF: FloatArray | null, dims: FoxDims, f32: boolean): Float64Array {
  const { B, Tk, H } = dims;
  const lam = new Float64Array(B * H * Tk);
  if (!logF) return lam;
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const base = (b * H + h) * Tk;
      let acc = 0;
      for (let t = 0; t < Tk; t++) {
        acc += logF[(b * Tk + t) * H + h];
        if (f32) acc = Math.fround(acc);
        lam[base + t] = acc;
      }
    }
  return lam;
}

/** Copies the `[T, D]` rows of head (b, h) out of a `[B,T,H,D]` array. */
function gather(x: FloatArray, b: number, h: number, T: number, H: number, D: number): Float64Array {
  const out = new Float64Array(T * D);
  for (let t = 0; t < T; t++) {
    const src = ((b * T + t) * H + h) * D;
    for (let d = 0; d < D; d++) out[t * D + d] = x[src + d];
  }
  return out;
}

function scatter(dst: FloatArray, src: Float64Array, b: number, h: number, T: number, H: number, D: number): void {
  for (let t = 0; t < T; t++) {
    const o = ((b * T + t) * H + h) * D;
    for (let d = 0; d < D; d++) dst[o + d] = src[t * D + d];
  }
}

interface Bounds {
  first: Int32Array;
  computed: number;
  total: number;
}

function bounds(lam: Float64Array, base: number, dims: FoxDims, bq: number, bk: number, delta: number | null): Bounds {
  const nqb = numBlocks(dims.Tq, bq);
  const first = new Int32Array(nqb);
  if (delta !== null) acpFirstBlocks((t) => lam[base + t], dims, bq, bk, delta, first);
  let computed = 0;
  let total = 0;
  for (let qb = 0; qb < nqb; qb++) {
    const last = lastKeyBlock(qb, dims, bq, bk);
    total += last + 1;
    computed += last - first[qb] + 1;
  }
  return { first, computed, total };
}

function dot(a: Float64Array, ao: number, b: Float64Array, bo: number, n: number): number {
  let s = 0;
  for (let d = 0; d < n; d++) s += a[ao + d] * b[bo + d];
  return s;
}

export function foxForwardCpu(
  q: FloatArray,
  k: FloatArray,
  v: FloatArray,
  logF: FloatArray | null,
  dims: FoxDims,
  opts: FoxCpuOptions,
): FoxCpuForward {
  const { B, Tq, Tk, H, D } = dims;
  const bq = opts.blockQ ?? BLOCK_Q;
  const bk = opts.blockK ?? BLOCK_K;
  const scale = opts.scale;
  const off = Tk - Tq;
  const o = like(q, B * Tq * H * D);
  const lse = like(q, B * H * Tq);
  const lamAll = lambdaCpu(logF, dims, q instanceof Float32Array);
  const m = new Float64Array(bq);
  const l = new Float64Array(bq);
  const acc = new Float64Array(bq * D);
  const s = new Float64Array(bk);
  let computedBlocks = 0;
  let totalBlocks = 0;
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const bh = b * H + h;
      const lb = bh * Tk;
      const qh = gather(q, b, h, Tq, H, D);
      const kh = gather(k, b, h, Tk, H, D);
      const vh = gather(v, b, h, Tk, H, D);
      const oh = new Float64Array(Tq * D);
      const bd = bounds(lamAll, lb, dims, bq, bk, opts.delta ? opts.delta[bh] : null);
      computedBlocks += bd.computed;
      totalBlocks += bd.total;
      for (let qb = 0; qb < bd.first.length; qb++) {
        const i0 = qb * bq;
        const i1 = Math.min(i0 + bq, Tq);
        m.fill(Number.NEGATIVE_INFINITY);
        l.fill(0);
        acc.fill(0);
        const kLast = lastKeyBlock(qb, dims, bq, bk);
        for (let kb = bd.first[qb]; kb <= kLast; kb++) {
          const j0 = kb * bk;
          const j1 = Math.min(j0 + bk, Tk);
          for (let i = i0; i < i1; i++) {
            const p = i + off;
            const jEnd = Math.min(j1, p + 1);
            if (jEnd <= j0) continue;
            const r = i - i0;
            const li = lamAll[lb + p];
            let rowMax = Number.NEGATIVE_INFINITY;
            for (let j = j0; j < jEnd; j++) {
              const sc = scale * dot(qh, i * D, kh, j * D, D) + li - lamAll[lb + j];
              s[j - j0] = sc;
              if (sc > rowMax) rowMax = sc;
            }
            const mNew = Math.max(m[r], rowMax);
            const alpha = m[r] === Number.NEGATIVE_INFINITY ? 0 : Math.exp(m[r] - mNew);
            let lr = l[r] * alpha;
            const ar = r * D;
            for (let d = 0; d < D; d++) acc[ar + d] *= alpha;
            for (let j = j0; j < jEnd; j++) {
              const pj = Math.exp(s[j - j0] - mNew);
              lr += pj;
              const vo = j * D;
              for (let d = 0; d < D; d++) acc[ar + d] += pj * vh[vo + d];
            }
            l[r] = lr;
            m[r] = mNew;
          }
        }
        for (let i = i0; i < i1; i++) {
          const r = i - i0;
          const inv = 1 / l[r];
          for (let d = 0; d < D; d++) oh[i * D + d] = acc[r * D + d] * inv;
          lse[bh * Tq + i] = m[r] + Math.log(l[r]);
        }
      }
      scatter(o, oh, b, h, Tq, H, D);
    }
  return { o, lse, computedBlocks, totalBlocks };
}

/**
 * Gradients of `Σ o·dO`: `dS = P∘(dP − δ)` with `δ_i = Σ_d o_i·dO_i`, then `dq = scale·dS·k`,
 * `dk = scale·dSᵀ·q`, `dv = Pᵀ·dO`, `dΛ_i = Σ_j dS_ij` (as a query), `dΛ_j −= Σ_i dS_ij` (as a key)
 * and `dlogF` = reverse cumulative sum of dΛ. Uses the forward's tile bounds (same `delta`).
 */
export function foxBackwardCpu(
  q: FloatArray,
  k: FloatArray,
  v: FloatArray,
  logF: FloatArray | null,
  o: FloatArray,
  lse: FloatArray,
  dO: FloatArray,
  dims: FoxDims,
  opts: FoxCpuOptions,
): FoxCpuBackward {
  const { B, Tq, Tk, H, D } = dims;
  const bq = opts.blockQ ?? BLOCK_Q;
  const bk = opts.blockK ?? BLOCK_K;
  const scale = opts.scale;
  const off = Tk - Tq;
  const dq = like(q, B * Tq * H * D);
  const dk = like(q, B * Tk * H * D);
  const dv = like(q, B * Tk * H * D);
  const dlogF = logF ? like(q, B * Tk * H) : null;
  const lamAll = lambdaCpu(logF, dims, q instanceof Float32Array);
  const dlam = new Float64Array(Tk);
  const rowD = new Float64Array(Tq);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const bh = b * H + h;
      const lb = bh * Tk;
      const qh = gather(q, b, h, Tq, H, D);
      const kh = gather(k, b, h, Tk, H, D);
      const vh = gather(v, b, h, Tk, H, D);
      const oh = gather(o, b, h, Tq, H, D);
      const doh = gather(dO, b, h, Tq, H, D);
      const dqh = new Float64Array(Tq * D);
      const dkh = new Float64Array(Tk * D);
      const dvh = new Float64Array(Tk * D);
      dlam.fill(0);
      for (let i = 0; i < Tq; i++) rowD[i] = dot(oh, i * D, doh, i * D, D);
      const bd = bounds(lamAll, lb, dims, bq, bk, opts.delta ? opts.delta[bh] : null);
      for (let qb = 0; qb < bd.first.length; qb++) {
        const i0 = qb * bq;
        const i1 = Math.min(i0 + bq, Tq);
        const kLast = lastKeyBlock(qb, dims, bq, bk);
        for (let kb = bd.first[qb]; kb <= kLast; kb++) {
          const j0 = kb * bk;
          const j1 = Math.min(j0 + bk, Tk);
          for (let i = i0; i < i1; i++) {
            const p = i + off;
            const jEnd = Math.min(j1, p + 1);
            const li = lamAll[lb + p];
            const lsei = lse[bh * Tq + i];
            const qo = i * D;
            let rowSum = 0;
            for (let j = j0; j < jEnd; j++) {
              const ko = j * D;
              const sc = scale * dot(qh, qo, kh, ko, D) + li - lamAll[lb + j];
              const pij = Math.exp(sc - lsei);
              const dp = dot(doh, qo, vh, ko, D);
              const ds = pij * (dp - rowD[i]);
              const sds = scale * ds;
              for (let d = 0; d < D; d++) {
                dvh[ko + d] += pij * doh[qo + d];
                dqh[qo + d] += sds * kh[ko + d];
                dkh[ko + d] += sds * qh[qo + d];
              }
              rowSum += ds;
              dlam[j] -= ds;
            }
            dlam[p] += rowSum;
          }
        }
      }
      scatter(dq, dqh, b, h, Tq, H, D);
      scatter(dk, dkh, b, h, Tk, H, D);
      scatter(dv, dvh, b, h, Tk, H, D);
      if (dlogF) {
        let acc = 0;
        for (let t = Tk - 1; t >= 0; t--) {
          acc += dlam[t];
          dlogF[(b * Tk + t) * H + h] = acc;
        }
      }
    }
  return { dq, dk, dv, dlogF };
}
