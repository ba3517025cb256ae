import { gate, rowTau } from './project.js';

/** The fused CPU kernels of `sparsek` on contiguous host arrays (float64 arithmetic). */

export type FloatArray = Float32Array | Float64Array;

function like(a: FloatArray, n: number): FloatArray {
  return a instanceof Float32Array ? new Float32Array(n) : new Float64Array(n);
}

/** `p [R,m]` for `z [R,m]` with budget `k[r]` per row. */
export function sparsekForwardCpu(z: FloatArray, R: number, m: number, k: Float64Array): FloatArray {
  const p = like(z, R * m);
  const row = new Float64Array(m);
  for (let r = 0; r < R; r++) {
    const base = r * m;
    for (let i = 0; i < m; i++) row[i] = z[base + i];
    const tau = rowTau(row, m, k[r]);
    for (let i = 0; i < m; i++) p[base + i] = gate(row[i], tau);
  }
  return p;
}

/**
 * The VJP `dz_i = s_i (g_i − mean_{j∈S} g_j)` with `S = {0 < p < 1}` per row (`s_i = [i ∈ S]`);
 * a row without fractional entries (hard top-k, or all ones) gets 0.
 */
export function sparsekBackwardCpu(p: FloatArray, g: FloatArray, R: number, m: number): FloatArray {
  const dz = like(g, R * m);
  for (let r = 0; r < R; r++) {
    const base = r * m;
    let s = 0;
    let n = 0;
    for (let i = 0; i < m; i++) {
      const v = p[base + i];
      if (v > 0 && v < 1) {
        s += g[base + i];
        n++;
      }
    }
    if (n === 0) continue;
    const mean = s / n;
    for (let i = 0; i < m; i++) {
      const v = p[base + i];
      if (v > 0 && v < 1) dz[base + i] = g[base + i] - mean;
    }
  }
  return dz;
}
