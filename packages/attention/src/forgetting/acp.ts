import type { FloatArray } from '../op.js';
import type { FoxDims } from '../tiles.js';

/** Default log ε of ACP: pruned attention mass below e^−10. */
export const DEFAULT_LOG_EPS = -10;

/**
 * The ACP threshold `δ = −(2U + log Tk) + log ε` from a bound `U` on |scaled q·k|: a pair whose
 * `Λ_i − Λ_j < δ` then has attention weight below `ε / Tk`, so the pruned mass of a row stays
 * below ε.
 */
export function acpDeltaFromBound(u: number, Tk: number, logEps: number): number {
  return -(2 * u + Math.log(Math.max(Tk, 1))) + logEps;
}

/** Per (b, h) thresholds with `U = max‖q‖·max‖k‖·scale` (host arrays in `[B,T,H,D]`). */
export function acpDeltaCpu(q: FloatArray, k: FloatArray, dims: FoxDims, scale: number, logEps: number): Float64Array {
  const { B, Tq, Tk, H, D } = dims;
  const out = new Float64Array(B * H);
  const maxNorm = (x: FloatArray, T: number, b: number, h: number) => {
    let best = 0;
    for (let t = 0; t < T; t++) {
      const o = ((b * T + t) * H + h) * D;
      let s = 0;
      for (let d = 0; d < D; d++) s += x[o + d] * x[o + d];
      if (s > best) best = s;
    }
    return Math.sqrt(best);
  };
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const u = maxNorm(q, Tq, b, h) * maxNorm(k, Tk, b, h) * Math.abs(scale);
      out[b * H + h] = acpDeltaFromBound(u, Tk, logEps);
    }
  return out;
}
