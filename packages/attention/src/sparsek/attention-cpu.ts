import type { FloatArray } from './cpu.js';
import { PrefixSelector } from './project.js';

/**
 * The fused CPU kernels of SPARSEK attention on contiguous host arrays `q, k, v, dO [B,T,H,D]`,
 * `u [B,T,H]` (float64 arithmetic). Per (b, h) the queries run in order: query i adds prefix entry
 * `e = i − window` to a `PrefixSelector` (the active set: the previous support plus the new entry)
 * and attends to the window `j ∈ (i − window, i]` plus the support of `m_i`. Nothing of size T×T
 * is formed.
 *
 * Cost: the attention part is O(T · (window + s) · D) with s the support size of m_i (k plus the
 * fractional entries beyond it; at least min(k, i − window + 1)). The thresholds cost
 * O(T · s · passes) with passes ≈ log2(spread / breakpoint gap) + 1 bisection passes over the
 * active set (at most 200); the backward reuses the saved τ_i (no bisection), O(T · s).
 */

export type Gate = 'kv' | 'v' | 'logit';

export interface SkDims {
  B: number;
  T: number;
  H: number;
  D: number;
}

export interface SkAttrs {
  dims: SkDims;
  budget: number;
  window: number;
  gate: Gate;
  scale: number;
}

function like(a: FloatArray, n: number): FloatArray {
  return a instanceof Float32Array ? new Float32Array(n) : new Float64Array(n);
}

/** The positions query i attends to and their gates: window first, then the selected ones. */
class Row {
  pos: Int32Array;
  gate: Float64Array;
  /** Index into the selector's active set (−1 for window entries). */
  act: Int32Array;
  s: Float64Array;
  dot: Float64Array;
  n = 0;
  constructor(cap: number) {
    this.pos = new Int32Array(cap);
    this.gate = new Float64Array(cap);
    this.act = new Int32Array(cap);
    this.s = new Float64Array(cap);
    this.dot = new Float64Array(cap);
  }
}

function gather(row: Row, sel: PrefixSelector, i: number, window: number): void {
  row.n = 0;
  for (let j = Math.max(0, i - window + 1); j <= i; j++) {
    row.pos[row.n] = j;
    row.gate[row.n] = 1;
    row.act[row.n] = -1;
    row.n++;
  }
  if (i - window < 0) return;
  for (let a = 0; a < sel.size; a++) {
    row.pos[row.n] = sel.active[a];
    row.gate[row.n] = sel.gateAt(a);
    row.act[row.n] = a;
    row.n++;
  }
}

/** Scores of query (b, i, h) into `row.s` (and the raw dots into `row.dot`); returns their max. */
function scores(row: Row, q: FloatArray, k: FloatArray, qo: number, kBase: (j: number) => number, a: SkAttrs): number {
  const { D } = a.dims;
  let mx = Number.NEGATIVE_INFINITY;
  for (let c = 0; c < row.n; c++) {
    const ko = kBase(row.pos[c]);
    let d = 0;
    for (let x = 0; x < D; x++) d += q[qo + x] * k[ko + x];
    row.dot[c] = d;
    const g = row.gate[c];
    const s = a.gate === 'kv' ? a.scale * g * d : a.gate === 'v' ? a.scale * d : a.scale * d + Math.log(g);
    row.s[c] = s;
    if (s > mx) mx = s;
  }
  return mx;
}

export function sparsekAttnForwardCpu(
  q: FloatArray,
  k: FloatArray,
  v: FloatArray,
  u: FloatArray,
  a: SkAttrs,
): { o: FloatArray; lse: Float64Array; tau: Float64Array } {
  const { B, T, H, D } = a.dims;
  const o = like(q, B * T * H * D);
  const lse = new Float64Array(B * H * T);
  const tau = new Float64Array(B * H * T).fill(Number.NaN);
  const row = new Row(T + a.window + 1);
  const acc = new Float64Array(D);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const bh = b * H + h;
      const sel = new PrefixSelector(u, (j) => (b * T + j) * H + h, a.budget, T);
      const base = (j: number) => ((b * T + j) * H + h) * D;
      for (let i = 0; i < T; i++) {
        if (i - a.window >= 0) tau[bh * T + i] = sel.step(i - a.window);
        gather(row, sel, i, a.window);
        const qo = base(i);
        const mx = scores(row, q, k, qo, base, a);
        let den = 0;
        acc.fill(0);
        for (let c = 0; c < row.n; c++) {
          const w = Math.exp(row.s[c] - mx);
          den += w;
          const wv = a.gate === 'logit' ? w : w * row.gate[c];
          const vo = base(row.pos[c]);
          for (let x = 0; x < D; x++) acc[x] += wv * v[vo + x];
        }
        for (let x = 0; x < D; x++) o[qo + x] = acc[x] / den;
        lse[bh * T + i] = mx + Math.log(den);
      }
    }
  }
  return { o, lse, tau };
}

export function sparsekAttnBackwardCpu(
  q: FloatArray,
  k: FloatArray,
  v: FloatArray,
  u: FloatArray,
  dO: FloatArray,
  lse: ArrayLike<number>,
  tau: ArrayLike<number>,
  a: SkAttrs,
): { dq: FloatArray; dk: FloatArray; dv: FloatArray; du: FloatArray } {
  const { B, T, H, D } = a.dims;
  const n = B * T * H * D;
  const dq = new Float64Array(n);
  const dk = new Float64Array(n);
  const dv = new Float64Array(n);
  const du = new Float64Array(B * T * H);
  const row = new Row(T + a.window + 1);
  const p = new Float64Array(T + a.window + 1);
  const dg = new Float64Array(T + a.window + 1);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const bh = b * H + h;
      const sel = new PrefixSelector(u, (j) => (b * T + j) * H + h, a.budget, T);
      const base = (j: number) => ((b * T + j) * H + h) * D;
      for (let i = 0; i < T; i++) {
        if (i - a.window >= 0) sel.step(i - a.window, tau[bh * T + i]);
        gather(row, sel, i, a.window);
        const qo = base(i);
        scores(row, q, k, qo, base, a);
        const l = lse[bh * T + i];
        // dP_c = dO_i · val_c with val_c = g_c v_c ('kv', 'v') or v_c; δ = Σ_c p_c dP_c
        let delta = 0;
        for (let c = 0; c < row.n; c++) {
          p[c] = Math.exp(row.s[c] - l);
          const vo = base(row.pos[c]);
          let dov = 0;
          for (let x = 0; x < D; x++) dov += dO[qo + x] * v[vo + x];
          dg[c] = dov; // dO·v_c, turned into ∂L/∂gate below
          const dP = a.gate === 'logit' ? dov : row.gate[c] * dov;
          delta += p[c] * dP;
        }
        for (let c = 0; c < row.n; c++) {
          const g = row.gate[c];
          const dov = dg[c];
          const dP = a.gate === 'logit' ? dov : g * dov;
          const dS = p[c] * (dP - delta);
          const ko = base(row.pos[c]);
          // ∂s/∂(q·k) and the value weight
          const sk = a.gate === 'kv' ? a.scale * g : a.scale;
          const wv = a.gate === 'logit' ? p[c] : p[c] * g;
          for (let x = 0; x < D; x++) {
            dq[qo + x] += dS * sk * k[ko + x];
            dk[ko + x] += dS * sk * q[qo + x];
            dv[ko + x] += wv * dO[qo + x];
          }
          dg[c] = a.gate === 'kv' ? p[c] * dov + dS * a.scale * row.dot[c] : a.gate === 'v' ? p[c] * dov : dS / g;
        }
        // VJP of m_i = sparsek(u_{≤ i−window}) on its fractional entries (others: 0)
        let sum = 0;
        let nf = 0;
        for (let c = 0; c < row.n; c++) {
          const g = row.gate[c];
          if (row.act[c] >= 0 && g > 0 && g < 1) {
            sum += dg[c];
            nf++;
          }
        }
        if (nf === 0) continue;
        const mean = sum / nf;
        for (let c = 0; c < row.n; c++) {
          const g = row.gate[c];
          if (row.act[c] >= 0 && g > 0 && g < 1) du[(b * T + row.pos[c]) * H + h] += dg[c] - mean;
        }
      }
    }
  }
  const out = (x: Float64Array): FloatArray => (q instanceof Float32Array ? Float32Array.from(x) : x);
  return { dq: out(dq), dk: out(dk), dv: out(dv), du: out(du) };
}
