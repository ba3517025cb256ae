import { type FloatArray, type Gemm, type HostMatrix, jsGemm } from '../op.js';
import { ACP_TILE, acpFirstBlocks, type FoxDims, lastKeyBlock, numBlocks, windowKeyBlock } from '../tiles.js';

/**
 * Fused forgetting attention on the CPU, on plain typed arrays in the `[B,T,H,D]` layout. Work
 * goes in chunks of whole query tiles × a group of heads, sized so that a chunk's score block
 * (heads × rows × keys it reads) stays within `CHUNK_ELEMENTS` — never the whole `[T,T]`: the
 * scores of a chunk come from one batched matrix product, then the masked softmax, then the
 * product with V. The forward saves the per-row log-normaliser; the backward recomputes a chunk's
 * scores from it and forms dP, dQ, dK and dV as products too. Products go through `gemm` (the CPU
 * backend's matmul in the fused op). ACP pruning is per tile (the tiles a chunk's rows skip get
 * weight 0, and whole skipped key ranges are not computed); a sliding window bounds each row's
 * keys, and its chunks hold about `window` rows, so that a chunk's keys stay near its rows. Arithmetic is in float64; Λ is
 * accumulated in the inputs' precision (float32 inputs: a float32 cumulative sum, as on the GPU).
 */

/** Upper bound on the elements of a chunk's score block (8 MB in float64). */
const CHUNK_ELEMENTS = 1 << 20;

export type { FloatArray } from '../op.js';

export interface FoxCpuOptions {
  scale: number;
  /** ACP threshold per (b, h) (`B·H` values, row-major); absent: nothing is pruned. */
  delta?: ArrayLike<number> | null;
  /** Sliding window: query position p sees keys `p − window < j ≤ p` (absent: all `j ≤ p`). */
  window?: number | null;
  /** Query and key tile sizes (default: the ACP grid, `ACP_TILE`); pruning is decided per tile. */
  blockQ?: number;
  blockK?: number;
  /** Matrix products (default: plain loops). */
  gemm?: Gemm;
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

interface Bounds {
  /** First key tile each query tile computes (ACP and the window). */
  first: Int32Array;
  computed: number;
  total: number;
  window: number | null;
}

function bounds(
  lam: Float64Array,
  base: number,
  dims: FoxDims,
  bq: number,
  bk: number,
  delta: number | null,
  window: number | null,
): Bounds {
  const nqb = numBlocks(dims.Tq, bq);
  const first = new Int32Array(nqb);
  if (delta !== null) acpFirstBlocks((t) => lam[base + t], dims, bq, bk, delta, first);
  if (window !== null) for (let qb = 0; qb < nqb; qb++) first[qb] = Math.max(first[qb], windowKeyBlock(qb, dims, bq, bk, window));
  let computed = 0;
  let total = 0;
  for (let qb = 0; qb < nqb; qb++) {
    const last = lastKeyBlock(qb, dims, bq, bk);
    total += last + 1;
    computed += last - first[qb] + 1;
  }
  return { first, computed, total, window };
}

/** First key row i keeps: its tile's first computed key tile, or its window's start if later. */
function rowStart(bd: Bounds, i: number, dims: FoxDims, bq: number, bk: number): number {
  const start = bd.first[Math.floor(i / bq)] * bk;
  return bd.window === null ? start : Math.max(start, i + dims.Tk - dims.Tq - bd.window + 1);
}

/** A chunk: heads `[h0, h0 + hs)`, queries `[i0, i0 + n)`, keys `[k0, k0 + L)`. */
interface Chunk {
  b: number;
  h0: number;
  hs: number;
  i0: number;
  n: number;
  k0: number;
  L: number;
}

/**
 * The chunks of batch b: head groups × query row ranges (whole tiles), with their key ranges.
 * With a window a chunk of n rows reads n + window − 1 keys, of which each row keeps `window`:
 * chunks of about window/2 rows (at least one tile) keep the computed-then-masked part small.
 */
function chunks(b: number, dims: FoxDims, bq: number, bk: number, bds: Bounds[], window: number | null): Chunk[] {
  const { Tq, Tk, H } = dims;
  const span = (tiles: number) => (window === null ? Tk : Math.min(Tk, tiles * bq + window));
  const hs = Math.max(1, Math.min(H, Math.floor(CHUNK_ELEMENTS / (bq * span(1)))));
  let tiles = Math.max(1, Math.floor(CHUNK_ELEMENTS / (hs * bq * span(1))));
  if (window !== null) {
    tiles = Math.min(tiles, Math.max(1, Math.floor(window / (2 * bq))));
    while (tiles > 1 && hs * tiles * bq * span(tiles) > CHUNK_ELEMENTS) tiles--;
  }
  const rows = bq * tiles;
  const out: Chunk[] = [];
  for (let h0 = 0; h0 < H; h0 += hs)
    for (let i0 = 0; i0 < Tq; i0 += rows) {
      const n = Math.min(rows, Tq - i0);
      const g = Math.min(hs, H - h0);
      let k0 = Tk;
      for (let h = h0; h < h0 + g; h++)
        for (let qb = i0 / bq; qb * bq < i0 + n; qb++) k0 = Math.min(k0, rowStart(bds[b * H + h], qb * bq, dims, bq, bk));
      out.push({ b, h0, hs: g, i0, n, k0, L: i0 + n + Tk - Tq - k0 });
    }
  return out;
}

/** `[hs, n, D]` rows `t0…` of heads h0… of a `[B,T,H,D]` array, or (`t`) their `[hs, D, n]` transpose. */
function heads(x: FloatArray, c: Chunk, t0: number, n: number, T: number, dims: FoxDims, t = false): HostMatrix {
  const { H, D } = dims;
  const offset = ((c.b * T + t0) * H + c.h0) * D;
  return t
    ? { data: x, offset, batch: c.hs, batchStride: D, rows: D, cols: n, rowStride: 1, colStride: H * D }
    : { data: x, offset, batch: c.hs, batchStride: D, rows: n, cols: D, rowStride: H * D, colStride: 1 };
}

/** A row-major `[batch, rows, cols]` array, or (`t`) its per-entry transpose. */
function block(x: FloatArray, batch: number, rows: number, cols: number, t = false): HostMatrix {
  return t
    ? { data: x, offset: 0, batch, batchStride: rows * cols, rows: cols, cols: rows, rowStride: 1, colStride: cols }
    : { data: x, offset: 0, batch, batchStride: rows * cols, rows, cols, rowStride: cols, colStride: 1 };
}

/**
 * For each (head, row) of a chunk: the keys `[lo, hi)` (relative to k0) the row keeps — from its
 * tile's first kept key tile (or its window's start) to its own position.
 */
function rowKeys(c: Chunk, hh: number, r: number, dims: FoxDims, bq: number, bk: number, bds: Bounds[]): [number, number] {
  const i = c.i0 + r;
  const bd = bds[c.b * dims.H + c.h0 + hh];
  return [rowStart(bd, i, dims, bq, bk) - c.k0, i + dims.Tk - dims.Tq + 1 - c.k0];
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
  const bq = opts.blockQ ?? ACP_TILE;
  const bk = opts.blockK ?? ACP_TILE;
  const gemm = opts.gemm ?? jsGemm;
  const scale = opts.scale;
  const off = Tk - Tq;
  const o = like(q, B * Tq * H * D);
  const lse = like(q, B * H * Tq);
  const lam = lambdaCpu(logF, dims, q instanceof Float32Array);
  const bds: Bounds[] = [];
  const window = opts.window ?? null;
  for (let bh = 0; bh < B * H; bh++) bds.push(bounds(lam, bh * Tk, dims, bq, bk, opts.delta ? opts.delta[bh] : null, window));
  for (let b = 0; b < B; b++)
    for (const c of chunks(b, dims, bq, bk, bds, window)) {
      const { n, L } = c;
      // scores, then the masked softmax in place: s becomes P
      const s = gemm(heads(q, c, c.i0, n, Tq, dims), heads(k, c, c.k0, L, Tk, dims, true));
      for (let hh = 0; hh < c.hs; hh++) {
        const bh = b * H + c.h0 + hh;
        for (let r = 0; r < n; r++) {
          const [lo, hi] = rowKeys(c, hh, r, dims, bq, bk, bds);
          const li = lam[bh * Tk + c.i0 + r + off];
          const row = (hh * n + r) * L;
          const lk = bh * Tk + c.k0;
          let m = Number.NEGATIVE_INFINITY;
          for (let j = lo; j < hi; j++) {
            const x = scale * s[row + j] + li - lam[lk + j];
            s[row + j] = x;
            if (x > m) m = x;
          }
          let z = 0;
          for (let j = lo; j < hi; j++) {
            const e = Math.exp(s[row + j] - m);
            s[row + j] = e;
            z += e;
          }
          const inv = 1 / z;
          for (let j = lo; j < hi; j++) s[row + j] *= inv;
          s.fill(0, row, row + lo);
          s.fill(0, row + hi, row + L);
          lse[bh * Tq + c.i0 + r] = m + Math.log(z);
        }
      }
      const oc = gemm(block(s, c.hs, n, L), heads(v, c, c.k0, L, Tk, dims)); // [hs, n, D]
      for (let hh = 0; hh < c.hs; hh++)
        for (let r = 0; r < n; r++) o.set(oc.subarray((hh * n + r) * D, (hh * n + r + 1) * D), ((b * Tq + c.i0 + r) * H + c.h0 + hh) * D);
    }
  let computedBlocks = 0;
  let totalBlocks = 0;
  for (const bd of bds) {
    computedBlocks += bd.computed;
    totalBlocks += bd.total;
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
  const bq = opts.blockQ ?? ACP_TILE;
  const bk = opts.blockK ?? ACP_TILE;
  const gemm = opts.gemm ?? jsGemm;
  const scale = opts.scale;
  const off = Tk - Tq;
  const dq = like(q, B * Tq * H * D);
  const dk64 = new Float64Array(B * Tk * H * D);
  const dv64 = new Float64Array(B * Tk * H * D);
  const lam = lambdaCpu(logF, dims, q instanceof Float32Array);
  const dlam = new Float64Array(B * H * Tk);
  const bds: Bounds[] = [];
  const window = opts.window ?? null;
  for (let bh = 0; bh < B * H; bh++) bds.push(bounds(lam, bh * Tk, dims, bq, bk, opts.delta ? opts.delta[bh] : null, window));
  // δ_i = o_i·dO_i, [B,Tq,H]
  const rowD = new Float64Array(B * Tq * H);
  for (let x = 0; x < rowD.length; x++) {
    let t = 0;
    for (let d = 0; d < D; d++) t += o[x * D + d] * dO[x * D + d];
    rowD[x] = t;
  }
  for (let b = 0; b < B; b++)
    for (const c of chunks(b, dims, bq, bk, bds, window)) {
      const { n, L } = c;
      const p = gemm(heads(q, c, c.i0, n, Tq, dims), heads(k, c, c.k0, L, Tk, dims, true)); // scores → P
      const ds = gemm(heads(dO, c, c.i0, n, Tq, dims), heads(v, c, c.k0, L, Tk, dims, true)); // dP → dS
      for (let hh = 0; hh < c.hs; hh++) {
        const h = c.h0 + hh;
        const bh = b * H + h;
        for (let r = 0; r < n; r++) {
          const [lo, hi] = rowKeys(c, hh, r, dims, bq, bk, bds);
          const i = c.i0 + r;
          const pos = i + off;
          const li = lam[bh * Tk + pos];
          const lsei = lse[bh * Tq + i];
          const di = rowD[(b * Tq + i) * H + h];
          const row = (hh * n + r) * L;
          const lk = bh * Tk + c.k0;
          let rowSum = 0;
          for (const a of [p, ds]) {
            a.fill(0, row, row + lo);
            a.fill(0, row + hi, row + L);
          }
          const base = li - lsei;
          for (let j = lo; j < hi; j++) {
            const pij = Math.exp(scale * p[row + j] + base - lam[lk + j]);
            const x = pij * (ds[row + j] - di);
            p[row + j] = pij;
            ds[row + j] = x;
            rowSum += x;
            dlam[lk + j] -= x;
          }
          dlam[bh * Tk + pos] += rowSum;
        }
      }
      const gq = gemm(block(ds, c.hs, n, L), heads(k, c, c.k0, L, Tk, dims)); // [hs, n, D]
      const gk = gemm(block(ds, c.hs, n, L, true), heads(q, c, c.i0, n, Tq, dims)); // [hs, L, D]
      const gv = gemm(block(p, c.hs, n, L, true), heads(dO, c, c.i0, n, Tq, dims));
      for (let hh = 0; hh < c.hs; hh++) {
        for (let r = 0; r < n; r++) {
          const dst = ((b * Tq + c.i0 + r) * H + c.h0 + hh) * D;
          const src = (hh * n + r) * D;
          for (let d = 0; d < D; d++) dq[dst + d] = scale * gq[src + d];
        }
        for (let j = 0; j < L; j++) {
          const dst = ((b * Tk + c.k0 + j) * H + c.h0 + hh) * D;
          const src = (hh * L + j) * D;
          for (let d = 0; d < D; d++) {
            dk64[dst + d] += scale * gk[src + d];
            dv64[dst + d] += gv[src + d];
          }
        }
      }
    }
  const dk = like(q, dk64.length);
  const dv = like(q, dv64.length);
  dk.set(dk64);
  dv.set(dv64);
  let dlogF: FloatArray | null = null;
  if (logF) {
    dlogF = like(q, B * Tk * H);
    for (let bh = 0; bh < B * H; bh++) {
      const b = Math.floor(bh / H);
      const h = bh % H;
      let acc = 0;
      for (let t = Tk - 1; t >= 0; t--) {
        acc += dlam[bh * Tk + t];
        dlogF[(b * Tk + t) * H + h] = acc;
      }
    }
  }
  return { dq, dk, dv, dlogF };
}
