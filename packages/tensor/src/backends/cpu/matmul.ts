import type { View } from '../../backend.js';
import { arrayFor, type TypedArray } from '../../dtype.js';
import { fail, fmtShape } from '../../errors.js';
import { sizeOf } from '../../shape.js';
import { dataOf } from './storage.js';
import { copyRun, offsets } from './strided.js';
import { createWasmGemm, GEMM_MR, GEMM_NR_F32, GEMM_NR_F64, type WasmGemmInstance } from './wasm-gemm.js';

/**
 * Blocked matmul (the BLIS loop order). For a C panel of up to `MH` rows × `NC` columns, each
 * `KC`-deep slice of B is packed into NR-column micro-panels, each `MC`-row block of A into
 * MR-row micro-panels, and a register-blocked micro-kernel (WebAssembly SIMD, or plain JS when
 * that is unavailable) accumulates every MR×NR tile of the panel over the slice. Packing reads
 * the operands through their strides, so transposed and broadcast (stride-0) views cost nothing
 * extra. The packed blocks and the C panel live in one buffer sized for these block sizes.
 */
const KC = 256;
const MC = 96;
const NC = 256;
const MH = 1024;
const A_AT = 0;
const B_AT = MC * KC;
const C_AT = B_AT + KC * NC;
const BUFFER_ELEMENTS = C_AT + MH * NC;

/** A micro-kernel driver over one element buffer (see `wasm-gemm.ts` for the packed layouts). */
export interface GemmEngine {
  readonly name: string;
  readonly buf: Float32Array | Float64Array;
  readonly mr: number;
  readonly nr: number;
  /** `C += A·B` over a packed block: `mcp`, `ncp` multiples of mr, nr; positions and `ldc` in elements. */
  run(mcp: number, ncp: number, kc: number, aAt: number, bAt: number, cAt: number, ldc: number): void;
}

let wasm: WasmGemmInstance | null | undefined;
const engines = new Map<string, GemmEngine>();

function wasmInstance(): WasmGemmInstance | null {
  if (wasm === undefined) wasm = createWasmGemm(BUFFER_ELEMENTS * 8);
  return wasm;
}

/** The engine for a float dtype: WebAssembly SIMD when available and wanted, else plain JS. */
export function gemmEngine(dtype: 'float32' | 'float64', simd: boolean): GemmEngine {
  const w = simd ? wasmInstance() : null;
  const key = w ? `wasm-${dtype}` : 'js';
  let e = engines.get(key);
  if (!e) {
    if (!w) e = jsEngine();
    else if (dtype === 'float32') e = wasmEngine('wasm-simd-f32', new Float32Array(w.memory.buffer), GEMM_NR_F32, 4, w.f32);
    else e = wasmEngine('wasm-simd-f64', new Float64Array(w.memory.buffer), GEMM_NR_F64, 8, w.f64);
    engines.set(key, e);
  }
  return e;
}

/** Whether WebAssembly SIMD kernels are available in this engine. */
export function hasWasmGemm(): boolean {
  return wasmInstance() !== null;
}

function wasmEngine(
  name: string,
  buf: Float32Array | Float64Array,
  nr: number,
  es: number,
  fn: (mc: number, nc: number, kc: number, a: number, b: number, c: number, ldc: number) => void,
): GemmEngine {
  return {
    name,
    buf,
    mr: GEMM_MR,
    nr,
    run(mcp, ncp, kc, aAt, bAt, cAt, ldc) {
      fn(mcp, ncp, kc, aAt * es, bAt * es, cAt * es, ldc * es);
    },
  };
}

/** Plain-JS engine: doubles throughout, 4×4 tiles with the 16 accumulators in locals. */
function jsEngine(): GemmEngine {
  const buf = new Float64Array(BUFFER_ELEMENTS);
  return {
    name: 'js',
    buf,
    mr: 4,
    nr: 4,
    run(mcp, ncp, kc, aAt, bAt, cAt, ldc) {
      for (let jr = 0; jr < ncp; jr += 4) {
        for (let ir = 0; ir < mcp; ir += 4) kernel4x4(buf, kc, aAt + ir * kc, bAt + jr * kc, cAt + ir * ldc + jr, ldc);
      }
    },
  };
}

function kernel4x4(h: Float64Array, kc: number, pa: number, pb: number, pc: number, ldc: number): void {
  const r1 = pc + ldc;
  const r2 = r1 + ldc;
  const r3 = r2 + ldc;
  let c00 = h[pc];
  let c01 = h[pc + 1];
  let c02 = h[pc + 2];
  let c03 = h[pc + 3];
  let c10 = h[r1];
  let c11 = h[r1 + 1];
  let c12 = h[r1 + 2];
  let c13 = h[r1 + 3];
  let c20 = h[r2];
  let c21 = h[r2 + 1];
  let c22 = h[r2 + 2];
  let c23 = h[r2 + 3];
  let c30 = h[r3];
  let c31 = h[r3 + 1];
  let c32 = h[r3 + 2];
  let c33 = h[r3 + 3];
  for (let k = 0; k < kc; k++, pa += 4, pb += 4) {
    const a0 = h[pa];
    const a1 = h[pa + 1];
    const a2 = h[pa + 2];
    const a3 = h[pa + 3];
    const b0 = h[pb];
    const b1 = h[pb + 1];
    const b2 = h[pb + 2];
    const b3 = h[pb + 3];
    c00 += a0 * b0;
    c01 += a0 * b1;
    c02 += a0 * b2;
    c03 += a0 * b3;
    c10 += a1 * b0;
    c11 += a1 * b1;
    c12 += a1 * b2;
    c13 += a1 * b3;
    c20 += a2 * b0;
    c21 += a2 * b1;
    c22 += a2 * b2;
    c23 += a2 * b3;
    c30 += a3 * b0;
    c31 += a3 * b1;
    c32 += a3 * b2;
    c33 += a3 * b3;
  }
  h[pc] = c00;
  h[pc + 1] = c01;
  h[pc + 2] = c02;
  h[pc + 3] = c03;
  h[r1] = c10;
  h[r1 + 1] = c11;
  h[r1 + 2] = c12;
  h[r1 + 3] = c13;
  h[r2] = c20;
  h[r2 + 1] = c21;
  h[r2 + 2] = c22;
  h[r2 + 3] = c23;
  h[r3] = c30;
  h[r3 + 1] = c31;
  h[r3 + 2] = c32;
  h[r3 + 3] = c33;
}

/** Packs `A[i, k]` (i < mc, k < kc; at `base + i·rs + k·cs`) into MR-row panels, zero-padded. */
function packA(h: TypedArray, at: number, a: TypedArray, base: number, rs: number, cs: number, mc: number, kc: number, mr: number): void {
  let idx = at;
  for (let ir = 0; ir < mc; ir += mr) {
    const live = Math.min(mr, mc - ir);
    const rb = base + ir * rs;
    if (live === 4 && mr === 4) {
      const rs2 = 2 * rs;
      const rs3 = 3 * rs;
      for (let k = 0, p = rb; k < kc; k++, p += cs, idx += 4) {
        h[idx] = a[p];
        h[idx + 1] = a[p + rs];
        h[idx + 2] = a[p + rs2];
        h[idx + 3] = a[p + rs3];
      }
    } else {
      for (let k = 0; k < kc; k++) {
        const p = rb + k * cs;
        for (let i = 0; i < mr; i++) h[idx++] = i < live ? a[p + i * rs] : 0;
      }
    }
  }
}

/** Packs `B[k, j]` (k < kc, j < nc; at `base + k·rs + j·cs`) into NR-column panels, zero-padded. */
function packB(h: TypedArray, at: number, b: TypedArray, base: number, rs: number, cs: number, kc: number, nc: number, nr: number): void {
  let idx = at;
  for (let jr = 0; jr < nc; jr += nr) {
    const live = Math.min(nr, nc - jr);
    const cb = base + jr * cs;
    if (live === nr && cs === 1) {
      for (let k = 0, p = cb; k < kc; k++, p += rs) {
        for (let j = 0; j < nr; j++) h[idx++] = b[p + j];
      }
    } else {
      for (let k = 0, p = cb; k < kc; k++, p += rs) {
        for (let j = 0; j < nr; j++) h[idx++] = j < live ? b[p + j * cs] : 0;
      }
    }
  }
}

/**
 * Few-row products (vector × matrix, as in token-by-token decoding): one pass over B, each row
 * of B scaled and added into a double accumulator row. Packing B would cost more than this.
 */
function gemmFewRows(
  a: TypedArray,
  aAt: number,
  ars: number,
  acs: number,
  b: TypedArray,
  bAt: number,
  brs: number,
  bcs: number,
  M: number,
  N: number,
  K: number,
  out: TypedArray,
  outAt: number,
): void {
  const acc = new Float64Array(N);
  for (let i = 0; i < M; i++) {
    acc.fill(0);
    for (let k = 0; k < K; k++) {
      const v = a[aAt + i * ars + k * acs];
      const row = bAt + k * brs;
      if (bcs === 1) for (let j = 0; j < N; j++) acc[j] += v * b[row + j];
      else for (let j = 0, p = row; j < N; j++, p += bcs) acc[j] += v * b[p];
    }
    copyRun(acc, 0, out, outAt + i * N, N);
  }
}

/** Below this many rows of A, `gemmFewRows` beats packing. */
export const FEW_ROWS = 3;

/** `out[outAt + i·N + j] = Σ_k A[i,k]·B[k,j]` for one matrix pair given by base offsets and strides. */
export function gemm(
  e: GemmEngine,
  a: TypedArray,
  aAt: number,
  ars: number,
  acs: number,
  b: TypedArray,
  bAt: number,
  brs: number,
  bcs: number,
  M: number,
  N: number,
  K: number,
  out: TypedArray,
  outAt: number,
): void {
  if (M < FEW_ROWS) {
    gemmFewRows(a, aAt, ars, acs, b, bAt, brs, bcs, M, N, K, out, outAt);
    return;
  }
  const { buf, mr, nr } = e;
  for (let m0 = 0; m0 < M; m0 += MH) {
    const mh = Math.min(MH, M - m0);
    const mhp = Math.ceil(mh / mr) * mr;
    for (let j0 = 0; j0 < N; j0 += NC) {
      const nc = Math.min(NC, N - j0);
      const ncp = Math.ceil(nc / nr) * nr;
      buf.fill(0, C_AT, C_AT + mhp * ncp);
      for (let p0 = 0; p0 < K; p0 += KC) {
        const kc = Math.min(KC, K - p0);
        packB(buf, B_AT, b, bAt + p0 * brs + j0 * bcs, brs, bcs, kc, nc, nr);
        for (let i0 = 0; i0 < mh; i0 += MC) {
          const mc = Math.min(MC, mh - i0);
          const mcp = Math.ceil(mc / mr) * mr;
          packA(buf, A_AT, a, aAt + (m0 + i0) * ars + p0 * acs, ars, acs, mc, kc, mr);
          e.run(mcp, ncp, kc, A_AT, B_AT, C_AT + i0 * ncp, ncp);
        }
      }
      for (let i = 0; i < mh; i++) copyRun(buf, C_AT + i * ncp, out, outAt + (m0 + i) * N + j0, nc);
    }
  }
}

/** Batched matmul of `[...batch, M, K]` by `[...batch, K, N]` views; result contiguous `[...batch, M, N]`. */
export function matmul(av: View, bv: View, simd: boolean): TypedArray {
  const dtype = av.dtype;
  if ((dtype !== 'float32' && dtype !== 'float64') || bv.dtype !== dtype) {
    fail('matmul', `the cpu backend multiplies float32 or float64 matrices, got ${av.dtype} and ${bv.dtype}`);
  }
  const r = av.shape.length;
  if (r < 2 || bv.shape.length !== r)
    fail('matmul', `needs operands of equal rank >= 2, got ${fmtShape(av.shape)} and ${fmtShape(bv.shape)}`);
  const M = av.shape[r - 2];
  const K = av.shape[r - 1];
  const N = bv.shape[r - 1];
  const batchShape = av.shape.slice(0, r - 2);
  const out = arrayFor(dtype, sizeOf(batchShape) * M * N);
  if (out.length === 0 || K === 0) return out;
  const aAts = offsets(batchShape, av.strides.slice(0, r - 2), av.offset);
  const bAts = offsets(batchShape, bv.strides.slice(0, r - 2), bv.offset);
  const a = dataOf('matmul', av);
  const b = dataOf('matmul', bv);
  const e = gemmEngine(dtype, simd);
  const [ars, acs] = [av.strides[r - 2], av.strides[r - 1]];
  const [brs, bcs] = [bv.strides[r - 2], bv.strides[r - 1]];
  for (let t = 0; t < aAts.length; t++) gemm(e, a, aAts[t], ars, acs, b, bAts[t], brs, bcs, M, N, K, out, t * M * N);
  return out;
}
