import type { View } from '../../../backend.js';
import { sizeOf } from '../../../shape.js';
import type { Engine, GpuStorage } from '../engine.js';
import { collapse, ENTRY_ARGS, foldGrid, Params, storageBinding, stridedOffsets, WG, WG_LINEAR } from '../wgsl.js';
import { allocElems, gpuOf, grid1d } from './common.js';
import { fill } from './elementwise.js';

/**
 * Batched f32 matmul `C[b] = A[b] · B[b]` over strided views, register-tiled.
 *
 * A workgroup computes a BM×BN tile of C; each of its (BM/TM)·(BN/TN) threads accumulates
 * TM×TN outputs in registers (as vec4 rows, fully unrolled so they stay in registers). Per
 * BK-slice of K, the A tile is staged in shared memory k-major (`As[k][m/4]` as vec4 of four
 * rows) and the B tile as `Bs[k][n/4]`, so the inner loop reads one vec4 of A and one of B per
 * 16 FMAs. Thread (tx, ty) owns row groups ty + i·TY and column groups tx + j·TX (interleaved,
 * so a warp's vec4 shared reads are conflict-free). With `dbuf`, the next slice is loaded
 * from global memory into registers while the current one is multiplied, into the other half of
 * a double-buffered shared tile: one barrier per slice.
 *
 * Operand loads adapt to the strides (the fast path is chosen per call; the generic path
 * handles anything, including broadcast batch dims and arbitrary transposed views):
 *  - `v4w`: vec4 loads along the tile's wide dim (A: m, B: n) when that dim is contiguous;
 *  - `v4k`: vec4 loads along k when k is contiguous (A row-major, B = Wᵀ views), transposed
 *           in registers as 4×4 blocks before the shared store;
 *  - `s_k` / `s_w`: scalar loads in 4×4 blocks, walking the smaller stride fastest.
 * vec4 modes need the other strides, the offset and the vector dim's extent divisible by 4.
 * Output tiles are visited in groups of `group` tile-rows for L2 reuse.
 */

export interface MatmulConfig {
  BM: number;
  BN: number;
  BK: number;
  TM: number;
  TN: number;
  dbuf: boolean;
  group: number;
  /** Unroll the BK loop in the generated source (bigger shaders, slower to compile). */
  unrollK: boolean;
}

type LoadMode = 'v4w' | 'v4k' | 's_k' | 's_w';

export const MATMUL_CONFIGS: Record<string, MatmulConfig> = {
  // 128 threads, 16×8 outputs each; the fastest measured on an H200 (Dawn/Vulkan) from n = 2048 up
  // (n = 4096: 40.6 TFLOP/s against 36.2 for `large`; BENCHMARKS.md)
  xlarge: { BM: 128, BN: 128, BK: 16, TM: 16, TN: 8, dbuf: false, group: 8, unrollK: true },
  // 128 threads, 8×8 outputs each
  large: { BM: 128, BN: 64, BK: 16, TM: 8, TN: 8, dbuf: false, group: 8, unrollK: true },
  // 64 threads, 8×8 each
  medium: { BM: 64, BN: 64, BK: 16, TM: 8, TN: 8, dbuf: false, group: 8, unrollK: true },
  // 64 threads, 4×4 each: thin or small products
  small: { BM: 32, BN: 32, BK: 16, TM: 4, TN: 4, dbuf: false, group: 1, unrollK: false },
  // 256 threads, 8×8 each, register-prefetched double buffering (kept for comparison)
  square128: { BM: 128, BN: 128, BK: 8, TM: 8, TN: 8, dbuf: true, group: 8, unrollK: true },
};

/** Tile configuration used for a shape; overridable for benchmarks (see `setMatmulConfig`). */
let override: MatmulConfig | null = null;
export function setMatmulConfig(c: MatmulConfig | null): void {
  override = c;
}

/**
 * Tile choice per shape (tuned on an H200: 132 SMs): the 128×128 tile once it gives ~100+
 * workgroups, then 128×64 on the same rule, 64×64 while that still gives ~48, 32×32 below. Software adapters (lavapipe)
 * never unroll the k-loop: their LLVM compile of an unrolled tile takes tens of seconds.
 */
function pickConfig(
  M: number,
  N: number,
  batches: number,
  maxShared: number,
  software: boolean,
  forced: MatmulConfig | null,
): MatmulConfig {
  const c = forced ?? override ?? choose(M, N, batches, maxShared);
  return software && c.unrollK ? { ...c, unrollK: false } : c;
}

/** The tiles a shape can take, largest first (128-row tiles only where the workgroup memory holds them). */
function tileLadder(M: number, N: number, maxShared: number): MatmulConfig[] {
  const { xlarge, large, medium } = MATMUL_CONFIGS;
  const out: MatmulConfig[] = [];
  if (sharedBytes(xlarge) <= maxShared && M >= 128 && N >= 128) out.push(xlarge);
  if (sharedBytes(large) <= maxShared && M >= 128 && N >= 64) out.push(large);
  if (M >= 64 && N >= 64) out.push(medium);
  return out;
}

function choose(M: number, N: number, batches: number, maxShared: number): MatmulConfig {
  const tiles = (c: MatmulConfig) => Math.ceil(M / c.BM) * Math.ceil(N / c.BN) * batches;
  for (const c of tileLadder(M, N, maxShared)) if (tiles(c) >= (c === MATMUL_CONFIGS.medium ? 48 : 96)) return c;
  return MATMUL_CONFIGS.small;
}

export function sharedBytes(c: MatmulConfig): number {
  return (c.BM + c.BN) * c.BK * 4 * (c.dbuf ? 2 : 1);
}

interface Operand {
  name: 'a' | 'b';
  mode: LoadMode;
  /** Tile extent along the wide dim (BM or BN). */
  W: number;
  /** Uniform names of the wide-dim stride and the k stride. */
  ws: string;
  ks: string;
  /** Global extent of the wide dim (M or N), origin variable. */
  ext: string;
  origin: string;
}

function loadMode(wideStride: number, kStride: number, wideExt: number, K: number, aligned: boolean): LoadMode {
  if (aligned && wideStride === 1 && kStride % 4 === 0 && wideExt % 4 === 0) return 'v4w';
  if (aligned && kStride === 1 && wideStride % 4 === 0 && K % 4 === 0) return 'v4k';
  return kStride <= wideStride ? 's_k' : 's_w';
}

/** Register declarations, global→register loads, and register→shared stores of one operand. */
function loaderCode(op: Operand, c: MatmulConfig, threads: number): { decl: string; load: string; store: (buf: string) => string } {
  const W4 = op.W / 4;
  const units = op.mode === 'v4w' ? W4 * c.BK : W4 * (c.BK / 4);
  const per = Math.ceil(units / threads);
  const guard = units % threads !== 0;
  const X = op.name;
  const S = `${X.toUpperCase()}s`;
  let decl = '';
  let load = '';
  const stores: ((buf: string) => string)[] = [];
  for (let l = 0; l < per; l++) {
    const u = `(lid + ${l * threads}u)`;
    const r = `${X}r${l}`;
    let body = '';
    if (op.mode === 'v4w') {
      decl += `  var ${r}: vec4<f32>;\n`;
      body += `    let w4 = ${u} % ${W4}u; let k = ${u} / ${W4}u;\n`;
      body += `    let gw = ${op.origin} + w4 * 4u; let gk = k0 + k;\n`;
      body += `    ${r} = vec4<f32>(0.0);\n    if (gw < P.${op.ext} && gk < P.K) { ${r} = ${X}[(o_${X} + gk * P.${op.ks} + gw) / 4u]; }\n`;
      stores.push((buf) => `    let w4 = ${u} % ${W4}u; let k = ${u} / ${W4}u;\n    ${S}[${buf} + k * ${W4}u + w4] = ${r};\n`);
    } else {
      for (let q = 0; q < 4; q++) decl += `  var ${r}_${q}: vec4<f32>;\n`;
      const kFast = op.mode !== 's_w';
      body += kFast
        ? `    let kq = ${u} % ${c.BK / 4}u; let w4 = ${u} / ${c.BK / 4}u;\n`
        : `    let w4 = ${u} % ${W4}u; let kq = ${u} / ${W4}u;\n`;
      body += `    let gw = ${op.origin} + w4 * 4u; let gk = k0 + kq * 4u;\n`;
      if (op.mode === 'v4k') {
        // r{l}_{q}: four consecutive k of wide row gw+q; transposed at the store
        for (let q = 0; q < 4; q++) {
          body += `    ${r}_${q} = vec4<f32>(0.0);\n    if (gw + ${q}u < P.${op.ext} && gk < P.K) { ${r}_${q} = ${X}[(o_${X} + (gw + ${q}u) * P.${op.ws} + gk) / 4u]; }\n`;
        }
      } else {
        // r{l}_{q}: wide rows gw..gw+3 at k = gk+q (already in store layout)
        for (let q = 0; q < 4; q++) {
          const el = (w: number) =>
            `select(0.0, ${X}[min(o_${X} + (gw + ${w}u) * P.${op.ws} + (gk + ${q}u) * P.${op.ks}, P.${X}_last)], gw + ${w}u < P.${op.ext} && gk + ${q}u < P.K)`;
          body += `    ${r}_${q} = vec4<f32>(${el(0)}, ${el(1)}, ${el(2)}, ${el(3)});\n`;
        }
      }
      stores.push((buf) => {
        let s = kFast
          ? `    let kq = ${u} % ${c.BK / 4}u; let w4 = ${u} / ${c.BK / 4}u;\n`
          : `    let w4 = ${u} % ${W4}u; let kq = ${u} / ${W4}u;\n`;
        for (let q = 0; q < 4; q++) {
          const v = op.mode === 'v4k' ? `vec4<f32>(${r}_0[${q}], ${r}_1[${q}], ${r}_2[${q}], ${r}_3[${q}])` : `${r}_${q}`;
          s += `    ${S}[${buf} + (kq * 4u + ${q}u) * ${W4}u + w4] = ${v};\n`;
        }
        return s;
      });
    }
    const open = guard ? `  if (${u} < ${units}u) {\n` : '  {\n';
    load += `${open}${body}  }\n`;
  }
  const store = (buf: string) =>
    stores.map((s) => `${guard ? `  if (${`(lid + ${stores.indexOf(s) * threads}u)`} < ${units}u) {\n` : '  {\n'}${s(buf)}  }\n`).join('');
  return { decl, load, store };
}

function matmulCode(c: MatmulConfig, aMode: LoadMode, bMode: LoadMode, vecOut: boolean, batchRank: number, p: Params): string {
  const TX = c.BN / c.TN;
  const TY = c.BM / c.TM;
  const threads = TX * TY;
  const MI = c.TM / 4;
  const NJ = c.TN / 4;
  const aSize = c.BK * (c.BM / 4);
  const bSize = c.BK * (c.BN / 4);
  const nbuf = c.dbuf ? 2 : 1;
  const A: Operand = { name: 'a', mode: aMode, W: c.BM, ws: 'am', ks: 'ak', ext: 'M', origin: 'm0' };
  const B: Operand = { name: 'b', mode: bMode, W: c.BN, ws: 'bn', ks: 'bk', ext: 'N', origin: 'n0' };
  const la = loaderCode(A, c, threads);
  const lb = loaderCode(B, c, threads);
  let s = '';
  s += storageBinding(0, 'a', aMode.startsWith('v4') ? 'vec4<f32>' : 'f32', 'read');
  s += storageBinding(1, 'b', bMode.startsWith('v4') ? 'vec4<f32>' : 'f32', 'read');
  s += storageBinding(2, 'c', vecOut ? 'vec4<f32>' : 'f32', 'read_write');
  s += p.declare(3);
  s += `var<workgroup> As: array<vec4<f32>, ${aSize * nbuf}>;\nvar<workgroup> Bs: array<vec4<f32>, ${bSize * nbuf}>;\n`;
  s += `@compute @workgroup_size(${threads}) fn main(${ENTRY_ARGS}) {\n`;
  s += `  let wg = ${WG_LINEAR};\n  let perBatch = P.tilesM * P.tilesN;\n  if (wg >= perBatch * P.batches) { return; }\n`;
  s += '  let batch = wg / perBatch;\n  let tile = wg % perBatch;\n';
  // grouped tile order: `group` tile-rows share B tiles in L2
  s += `  let width = ${c.group}u * P.tilesN;\n  let firstM = (tile / width) * ${c.group}u;\n  let gsz = min(P.tilesM - firstM, ${c.group}u);\n`;
  s += '  let tm = firstM + (tile % width) % gsz;\n  let tn = (tile % width) / gsz;\n';
  s += `  let m0 = tm * ${c.BM}u;\n  let n0 = tn * ${c.BN}u;\n`;
  s += stridedOffsets('batch', batchRank, 'bs', ['a', 'b']);
  s += `  let tx = lid % ${TX}u;\n  let ty = lid / ${TX}u;\n`;
  for (let i = 0; i < MI; i++) for (let r = 0; r < 4; r++) for (let j = 0; j < NJ; j++) s += `  var acc${i}_${r}_${j} = vec4<f32>(0.0);\n`;
  s += la.decl + lb.decl;
  const step = (ab: string, bb: string, kk: string) => {
    let t = '';
    for (let i = 0; i < MI; i++) t += `      let a${i} = As[${ab} + ${kk} * ${c.BM / 4}u + ${i * TY}u + ty];\n`;
    for (let j = 0; j < NJ; j++) t += `      let b${j} = Bs[${bb} + ${kk} * ${c.BN / 4}u + ${j * TX}u + tx];\n`;
    for (let i = 0; i < MI; i++)
      for (let r = 0; r < 4; r++)
        for (let j = 0; j < NJ; j++) t += `      acc${i}_${r}_${j} = fma(vec4<f32>(a${i}[${r}]), b${j}, acc${i}_${r}_${j});\n`;
    return t;
  };
  const compute = (ab: string, bb: string) => {
    if (!c.unrollK) return `    for (var kk = 0u; kk < ${c.BK}u; kk++) {\n${step(ab, bb, 'kk')}    }\n`;
    let t = '';
    for (let kk = 0; kk < c.BK; kk++) t += `    {\n${step(ab, bb, `${kk}u`)}    }\n`;
    return t;
  };
  s += '  var k0 = 0u;\n';
  if (c.dbuf) {
    s += la.load + lb.load + la.store('0u') + lb.store('0u');
    s += '  workgroupBarrier();\n';
    s += '  for (var t = 0u; t < P.tilesK; t++) {\n';
    s += `    let cur = t & 1u;\n    let ab = cur * ${aSize}u;\n    let bb = cur * ${bSize}u;\n    let more = t + 1u < P.tilesK;\n`;
    s += `    k0 = (t + 1u) * ${c.BK}u;\n`;
    s += `    if (more) {\n${la.load}${lb.load}    }\n`;
    s += compute('ab', 'bb');
    s += `    if (more) {\n      let nab = ${aSize}u - ab;\n      let nbb = ${bSize}u - bb;\n${la.store('nab')}${lb.store('nbb')}    }\n`;
    s += '    workgroupBarrier();\n  }\n';
  } else {
    s += '  for (var t = 0u; t < P.tilesK; t++) {\n';
    s += `    k0 = t * ${c.BK}u;\n`;
    s += la.load + lb.load + la.store('0u') + lb.store('0u');
    s += '    workgroupBarrier();\n';
    s += compute('0u', '0u');
    s += '    workgroupBarrier();\n  }\n';
  }
  s += '  let cb = batch * P.M * P.N;\n';
  for (let i = 0; i < MI; i++) {
    for (let r = 0; r < 4; r++) {
      s += `  { let m = m0 + (ty + ${i * TY}u) * 4u + ${r}u;\n    if (m < P.M) {\n`;
      for (let j = 0; j < NJ; j++) {
        s += `      { let n = n0 + (tx + ${j * TX}u) * 4u;\n`;
        if (vecOut) s += `        if (n < P.N) { c[(cb + m * P.N + n) / 4u] = acc${i}_${r}_${j}; }\n`;
        else for (let q = 0; q < 4; q++) s += `        if (n + ${q}u < P.N) { c[cb + m * P.N + n + ${q}u] = acc${i}_${r}_${j}[${q}]; }\n`;
        s += '      }\n';
      }
      s += '    }\n  }\n';
    }
  }
  s += '}\n';
  return s;
}

/** Workgroups that fill the H200's 132 SMs about four times over: split-K's target. */
const SPLIT_TARGET = 528;
/** Bytes the split-K partial sums may take. */
const SPLIT_MAX_BYTES = 256 * 2 ** 20;

/**
 * Split-K for long, thin products (the weight gradients of training, K = batch · tokens): when
 * the output gives too few workgroups to fill the GPU and K is long, K is cut into S equal
 * chunks (S a power of two dividing K, each chunk ≥ 1024 long), each chunk's product is one batch of
 * the same kernel, and a second kernel sums the S partial products in a fixed order (deterministic).
 * Returns S = 1 where it does not pay.
 */
export function splitK(M: number, N: number, K: number, batches: number, maxShared: number): { S: number; c: MatmulConfig } {
  const c = choose(M, N, batches, maxShared);
  const tiles = (x: MatmulConfig) => Math.ceil(M / x.BM) * Math.ceil(N / x.BN) * batches;
  if (override) return { S: 1, c };
  // the largest tile the shape takes: split-K gives it the workgroups it lacked
  const big = tileLadder(M, N, maxShared)[0] ?? c;
  const S = splitCount(K, tiles(c), tiles(big), batches * M * N * 4);
  return S === 1 ? { S: 1, c } : { S, c: big };
}

/**
 * Split-K's chunk count (1: none) for a product whose chosen tile gives `tiles` workgroups and
 * whose largest tile gives `bigTiles`, with `outBytes` per partial product: below half the target
 * workgroups and from K = 4096 on, S doubles while S·bigTiles stays within the target, S divides
 * K into chunks ≥ 1024 and the partials fit their byte budget. Shared by the f32 and 'high' matmuls.
 */
export function splitCount(K: number, tiles: number, bigTiles: number, outBytes: number): number {
  if (K < 4096 || tiles >= SPLIT_TARGET / 2) return 1;
  let S = 1;
  while (S * 2 * bigTiles <= SPLIT_TARGET && K % (S * 2) === 0 && K / (S * 2) >= 1024 && S * 2 * outBytes <= SPLIT_MAX_BYTES) S *= 2;
  return S;
}

/** The sizes of `a` [..., M, K] · `b` [..., K, N]. */
function dims(a: View, b: View) {
  const r = a.shape.length;
  const batchShape = a.shape.slice(0, r - 2);
  return { r, M: a.shape[r - 2], K: a.shape[r - 1], N: b.shape[r - 1], batchShape, batches: sizeOf(batchShape) };
}

export function matmul(e: Engine, a: View, b: View, maxShared: number, software = false): GpuStorage {
  const { M, K, N, batches } = dims(a, b);
  if (batches * M * N > 0 && K > 0) {
    const { S, c } = splitK(M, N, K, batches, maxShared);
    if (S > 1) return matmulSplitK(e, a, b, S, c, maxShared, software);
  }
  return matmulPlain(e, a, b, maxShared, software, null);
}

/** Split-K (see {@link splitK}): S chunk products as batches into a [batches, S, M, N] buffer, then their sum. */
function matmulSplitK(e: Engine, a: View, b: View, S: number, c: MatmulConfig, maxShared: number, software: boolean): GpuStorage {
  const [ac, bc] = splitKViews(a, b, S);
  return sumSplitK(e, matmulPlain(e, ac, bc, maxShared, software, c), a, b, S);
}

/** `a` [..., M, K] and `b` [..., K, N] as [..., S, M, K/S] and [..., S, K/S, N]: chunk s is columns (rows) [s·K/S, (s+1)·K/S). */
export function splitKViews(a: View, b: View, S: number): [View, View] {
  const { r, M, K, N } = dims(a, b);
  const Kc = K / S;
  // chunk s of A is its columns [s·Kc, (s+1)·Kc), of B its rows: a batch dim of stride Kc·(k stride)
  const chunked = (v: View, kAxis: number): View => ({
    ...v,
    shape: [...v.shape.slice(0, r - 2), S, ...(kAxis === r - 1 ? [M, Kc] : [Kc, N])],
    strides: [...v.strides.slice(0, r - 2), Kc * v.strides[kAxis], v.strides[r - 2], v.strides[r - 1]],
  });
  return [chunked(a, r - 1), chunked(b, r - 2)];
}

/** The sum over s of split-K's partial products `parts` [batches, S, M, N] of `a`·`b` (freed), in a fixed order. */
export function sumSplitK(e: Engine, parts: GpuStorage, a: View, b: View, S: number): GpuStorage {
  const { M, N, batches } = dims(a, b);
  const out = allocElems(e, batches * M * N);
  const n = batches * M * N;
  const vec = (M * N) % 4 === 0;
  const W = vec ? 4 : 1;
  const p = new Params()
    .u32('n', n / W)
    .u32('mn', (M * N) / W)
    .u32('S', S);
  const T = vec ? 'vec4<f32>' : 'f32';
  const code = () =>
    storageBinding(0, 'parts', T, 'read') +
    storageBinding(1, 'out', T, 'read_write') +
    p.declare(2) +
    `@compute @workgroup_size(${WG}) fn main(${ENTRY_ARGS}) {
  let t = ${WG_LINEAR} * ${WG}u + lid;
  if (t >= P.n) { return; }
  let b = t / P.mn;
  let base = b * P.S * P.mn + t % P.mn;
  var acc = parts[base];
  for (var s = 1u; s < P.S; s++) { acc += parts[base + s * P.mn]; }
  out[t] = acc;
}
`;
  e.dispatch({
    name: 'matmul_splitk_sum',
    key: `matmul_splitk_sum:${vec}`,
    code,
    bindings: [
      { buffer: parts.buffer, access: 'read' },
      { buffer: out.buffer, access: 'read_write' },
    ],
    params: p,
    workgroups: grid1d(n / W).workgroups,
    detail: () => `${M}×${N}${batches > 1 ? ` ×${batches}` : ''} S=${S}`,
  });
  e.free(parts);
  return out;
}

function matmulPlain(e: Engine, a: View, b: View, maxShared: number, software: boolean, forced: MatmulConfig | null): GpuStorage {
  const { r, M, K, N, batchShape, batches } = dims(a, b);
  const out = allocElems(e, batches * M * N);
  if (batches * M * N === 0) return out;
  if (K === 0) {
    e.free(out);
    return fill(e, batches * M * N, 0, 'float32');
  }
  const bc = collapse(batchShape, [{ strides: a.strides.slice(0, r - 2) }, { strides: b.strides.slice(0, r - 2) }]);
  const c = pickConfig(M, N, batches, maxShared, software, forced);
  // size-1 dims have meaningless strides: normalise them so they do not block vec4 paths
  const am = M === 1 ? K : a.strides[r - 2];
  const ak = K === 1 ? 1 : a.strides[r - 1];
  const bk = K === 1 ? N : b.strides[r - 2];
  const bn = N === 1 ? 1 : b.strides[r - 1];
  const aAligned = a.offset % 4 === 0 && bc.strides[0].every((s) => s % 4 === 0);
  const bAligned = b.offset % 4 === 0 && bc.strides[1].every((s) => s % 4 === 0);
  const aMode = loadMode(am, ak, M, K, aAligned);
  const bMode = loadMode(bn, bk, N, K, bAligned);
  const vecOut = N % 4 === 0;
  const tilesM = Math.ceil(M / c.BM);
  const tilesN = Math.ceil(N / c.BN);
  const aBuf = gpuOf('matmul', a).buffer;
  const bBuf = gpuOf('matmul', b).buffer;
  const p = new Params()
    .u32('M', M)
    .u32('N', N)
    .u32('K', K)
    .u32('tilesM', tilesM)
    .u32('tilesN', tilesN)
    .u32('tilesK', Math.ceil(K / c.BK))
    .u32('batches', batches)
    .u32('am', am)
    .u32('ak', ak)
    .u32('bk', bk)
    .u32('bn', bn)
    .u32('a_last', aBuf.size / 4 - 1)
    .u32('b_last', bBuf.size / 4 - 1);
  p.u32s('bs', bc.shape).u32('a_o', a.offset).u32s('a_s', bc.strides[0]).u32('b_o', b.offset).u32s('b_s', bc.strides[1]);
  const cfgKey = `${c.BM}x${c.BN}x${c.BK}_${c.TM}x${c.TN}_${c.dbuf}_${c.group}_${c.unrollK}`;
  e.dispatch({
    name: 'matmul',
    key: `matmul:${cfgKey}:${aMode}:${bMode}:${vecOut}:${bc.shape.length}`,
    code: () => matmulCode(c, aMode, bMode, vecOut, bc.shape.length, p),
    bindings: [
      { buffer: aBuf, access: 'read' },
      { buffer: bBuf, access: 'read' },
      { buffer: out.buffer, access: 'read_write' },
    ],
    params: p,
    workgroups: foldGrid(tilesM * tilesN * batches),
    detail: () => `${M}×${N}×${K}${batches > 1 ? ` ×${batches}` : ''} a ${aMode} b ${bMode} tile ${cfgKey}`,
  });
  return out;
}
