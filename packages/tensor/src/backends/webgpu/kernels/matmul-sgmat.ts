import type { View } from '../../../backend.js';
import { fail } from '../../../errors.js';
import { sizeOf } from '../../../shape.js';
import type { Engine, GpuStorage } from '../engine.js';
import { collapse, ENTRY_ARGS, foldGrid, Params, storageBinding, stridedOffsets, WG_LINEAR } from '../wgsl.js';
import { allocElems, gpuOf } from './common.js';
import { fill } from './elementwise.js';
import { splitCount, splitKViews, sumSplitK } from './matmul.js';

/**
 * `precision: 'high'` matmul: f16 operands, f32 accumulation, on the tensor cores through WGSL
 * subgroup matrices (`chromium_experimental_subgroup_matrix`, 16×16×16 f16 → f32).
 *
 * Three steps per product, all queued (nothing is read back):
 * 1. `maxabs`: the largest |x| of each operand (atomicMax on the bits of |x|, which order like
 *    the values for non-negative floats) into a 2-word stats buffer.
 * 2. `pack`: each operand (any strides, broadcast batches) is scaled by a power of two 2^k that
 *    puts its max-abs in [2^14, 2^15) — so no finite f32 operand becomes ±Inf in f16 and small
 *    ones keep their 11 bits until 2^-38 of the max — converted to f16 and written zero-padded
 *    to whole tiles, in the layout closest to its strides (K contiguous, or M/N contiguous).
 *    Scaling by a power of two is exact; the result is multiplied back by 2^-(kA+kB).
 * 3. `sgmat`: workgroups of SM×SN subgroups compute BM×BN tiles; each subgroup owns
 *    (BM/SM)×(BN/SN) outputs as 16×16 f32 result matrices. Per BK-slice the A and B tiles are
 *    staged in workgroup memory (16-byte global loads, rows padded by `pad` halves) or, with
 *    `staged: false`, loaded by `subgroupMatrixLoad` straight from storage. Padding makes every
 *    load in bounds; the epilogue stores interior tiles directly and edge tiles through a
 *    per-subgroup scratch tile with bounds checks.
 */

export interface SgmatConfig {
  BM: number;
  BN: number;
  BK: number;
  /** Subgroups along M and N (32·SM·SN threads). */
  SM: number;
  SN: number;
  /** Stage tiles in workgroup memory (else load the matrices from storage). */
  staged: boolean;
  /** Halves of padding after each staged row (bank conflicts). */
  pad: number;
  /** Tile-rows per group of the tile order (L2 reuse). */
  group: number;
  /**
   * Builtin spelling: 'template' is Dawn's current `subgroupMatrixLoad<T, row_major>(p, o, s)`,
   * 'legacy' the deprecated `subgroupMatrixLoad<T>(p, o, colMajor, s)`.
   */
  spelling: 'template' | 'legacy';
  /**
   * How a subgroup learns its index: the `subgroup_id` builtin or `subgroupBroadcastFirst(lid / 32)`,
   * with `diagnostic(off, subgroup_uniformity)` or not (the matrix builtins want offsets the
   * uniformity analysis can prove uniform).
   */
  sgIndex: 'builtin-diag' | 'builtin' | 'broadcast-diag';
  /** Load the next slice into registers while the current one is multiplied. */
  prefetch: boolean;
  /**
   * Double-buffered staging: two workgroup copies of each tile; the next slice is read into
   * registers and stored into the other copy while the current one is multiplied, one barrier
   * per slice (implies `prefetch`).
   */
  dbuf?: boolean;
  /** Staging stores at indices written as 8·(unit) + q (16-byte aligned, for the compiler to merge). */
  align8?: boolean;
}

export const SGMAT_CONFIGS: Record<string, SgmatConfig> = {
  // 4 subgroups (2×2), each 64×64 outputs (4×4 result matrices): the fastest measured on an H200
  // (n = 4096: core kernel 169.5 TFLOP/s against 104.3 for 8 subgroups of 64×32; BENCHMARKS.md)
  wide: {
    BM: 128,
    BN: 128,
    BK: 32,
    SM: 2,
    SN: 2,
    staged: true,
    pad: 8,
    group: 8,
    spelling: 'template',
    sgIndex: 'builtin-diag',
    prefetch: false,
  },
  // 8 subgroups (2×4), each 64×64, register prefetch: the default for large products on Hopper
  // data-center parts (H200, 2026-12-01 and -02: core 178–184 TFLOP/s against 170–174 for 'wide')
  wide256: {
    BM: 128,
    BN: 256,
    BK: 32,
    SM: 2,
    SN: 4,
    staged: true,
    pad: 8,
    group: 8,
    spelling: 'template',
    sgIndex: 'builtin-diag',
    prefetch: true,
  },
  // 4 subgroups (2×2), each 32×32
  small: {
    BM: 64,
    BN: 64,
    BK: 32,
    SM: 2,
    SN: 2,
    staged: true,
    pad: 8,
    group: 8,
    spelling: 'template',
    sgIndex: 'builtin-diag',
    prefetch: false,
  },
  // one subgroup per 16×16 tile, straight from storage: the known-good first kernel
  simple: {
    BM: 16,
    BN: 16,
    BK: 16,
    SM: 1,
    SN: 1,
    staged: false,
    pad: 0,
    group: 1,
    spelling: 'template',
    sgIndex: 'builtin-diag',
    prefetch: false,
  },
};

let sgOverride: SgmatConfig | null = null;
/** Forces one configuration for every 'high' product (benchmarks, hardware checks); null restores the choice. */
export function setSgmatConfig(c: SgmatConfig | null): void {
  sgOverride = c;
}

let sgPatch: Partial<SgmatConfig> | null = null;
/** Changes fields of every chosen configuration (hardware checks of builtin spellings); null restores. */
export function setSgmatPatch(p: Partial<SgmatConfig> | null): void {
  sgPatch = p;
}

function chooseSgmat(e: Engine, M: number, N: number, batches: number): SgmatConfig {
  const c = sgOverride ?? pickSgmat(M, N, batches, hopperClass(e));
  return sgPatch ? { ...c, ...sgPatch } : c;
}

/** NVIDIA Hopper data-center adapters (H100/H200/H800/GH200), where `wide256` was measured fastest. */
function hopperClass(e: Engine): boolean {
  const i = (e.device as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
  return i !== undefined && /\b(g?h(100|200|800))\b/i.test(`${i.vendor} ${i.architecture} ${i.device} ${i.description}`);
}

function pickSgmat(M: number, N: number, batches: number, hopper = false): SgmatConfig {
  const { wide, wide256, small } = SGMAT_CONFIGS;
  const tiles = (c: SgmatConfig) => sgTiles(M, N, batches, c);
  if (hopper && M >= 128 && N >= 256 && tiles(wide256) >= 96) return wide256;
  if (M >= 128 && N >= 128 && tiles(wide) >= 96) return wide;
  return small;
}

const sgTiles = (M: number, N: number, batches: number, c: SgmatConfig) => Math.ceil(M / c.BM) * Math.ceil(N / c.BN) * batches;

/**
 * Split-K of a 'high' product (`splitCount`, as for f32): S chunks and the configuration that
 * runs them, the largest tile the shape takes (`pickSgmat` with workgroups to spare). Exported
 * for tests.
 */
export function splitKHigh(M: number, N: number, K: number, batches: number, hopper: boolean): { S: number; c: SgmatConfig } {
  const c = pickSgmat(M, N, batches, hopper);
  const big = pickSgmat(M, N, Number.POSITIVE_INFINITY, hopper); // the largest tile M and N take
  const S = splitCount(K, sgTiles(M, N, batches, c), sgTiles(M, N, batches, big), batches * M * N * 4);
  return S === 1 ? { S, c } : { S, c: big };
}

/** Packed operand layout: rows of `C` contiguous halves; 'k' = K contiguous ([W][K]), 'w' = M or N contiguous ([K][W]). */
export type PackLayout = 'k' | 'w';

/** WGSL helpers shared by the pack and matmul kernels: the power-of-two scale of a max-abs. */
export const SCALE_WGSL = `
fn fg_scale_exp(maxbits: u32) -> i32 {
  if (maxbits == 0u || maxbits >= 0x7f800000u) { return 0; }
  let e = i32(maxbits >> 23u) - 127;
  return clamp(14 - e, -126, 126);
}
fn fg_pow2(k: i32) -> f32 { return bitcast<f32>(u32(k + 127) << 23u); }
`;

/** The exponent `k` the kernels use for a max-abs (host mirror of `fg_scale_exp`, for tests). */
export function scaleExponent(maxAbs: number): number {
  if (maxAbs === 0 || !Number.isFinite(maxAbs)) return 0;
  const bits = new Uint32Array(new Float32Array([maxAbs]).buffer)[0];
  const e = ((bits >>> 23) & 0xff) - 127;
  return Math.min(126, Math.max(-126, 14 - e));
}

/** A 2-D operand as rows × cols over a collapsed batch loop. */
export interface Operand2d {
  R: number;
  C: number;
  rs: number;
  cs: number;
  offset: number;
  batchShape: number[];
  batchStrides: number[];
}

/**
 * Where an operand's elements are one dense range of its buffer (any order of its dims; a
 * broadcast dim of stride 0 repeats it): its first index and length, else null. Max-abs then
 * reads the range.
 */
export function denseRange(op: Operand2d): { start: number; count: number } | null {
  const dims = [...op.batchShape.map((n, i) => [n, op.batchStrides[i]]), [op.R, op.rs], [op.C, op.cs]]
    .filter(([n, s]) => n > 1 && s !== 0)
    .sort((x, y) => x[1] - y[1]);
  let want = 1;
  for (const [n, st] of dims) {
    if (st !== want) return null;
    want *= n;
  }
  return { start: op.offset, count: want };
}

/**
 * Writes the max |x| bits of `x` into stats[slot] (stats zeroed first): over a dense range
 * (`denseRange`) one flat loop, vec4 where the range is 4-aligned; else element by element
 * through the operand's strides.
 */
function maxAbs(e: Engine, x: GpuStorage, op: Operand2d, batches: number, stats: GpuStorage, slot: number): void {
  if (batches * op.R * op.C === 0) return;
  const range = denseRange(op);
  const vec = range !== null && range.start % 4 === 0 && range.count % 4 === 0;
  const u = vec ? 4 : 1;
  const total = range ? range.count / u : batches * op.R * op.C;
  const groups = Math.min(Math.ceil(total / (256 * 8)), 8192);
  const rank = op.batchShape.length;
  const p = new Params()
    .u32('total', total)
    .u32('threads', groups * 256)
    .u32('slot', slot);
  let body: string;
  if (range) {
    p.u32('start', range.start / u);
    body = vec
      ? '    let v = bitcast<vec4<u32>>(abs(x[P.start + i]));\n    m = max(m, max(max(v.x, v.y), max(v.z, v.w)));\n'
      : '    m = max(m, bitcast<u32>(abs(x[P.start + i])));\n';
  } else {
    p.u32('R', op.R).u32('C', op.C).u32('rs', op.rs).u32('cs', op.cs);
    p.u32s('bs', op.batchShape).u32('x_o', op.offset).u32s('x_s', op.batchStrides);
    body = '    let rc = P.R * P.C;\n    let b = i / rc;\n    let rem = i % rc;\n    let r = rem / P.C;\n    let c = rem % P.C;\n';
    body += stridedOffsets('b', rank, 'bs', ['x']).replace(/^/gm, '  ');
    body += '    m = max(m, bitcast<u32>(abs(x[o_x + r * P.rs + c * P.cs])));\n';
  }
  const code = () => {
    let s = storageBinding(0, 'x', vec ? 'vec4<f32>' : 'f32', 'read');
    s += storageBinding(1, 'stats', 'atomic<u32>', 'read_write');
    s += p.declare(2);
    s += 'var<workgroup> red: array<u32, 256>;\n';
    s += `@compute @workgroup_size(256) fn main(${ENTRY_ARGS}) {\n`;
    s += `  let wg = ${WG_LINEAR};\n  var m = 0u;\n`;
    s += `  if (wg < ${groups}u) {\n  for (var i = wg * 256u + lid; i < P.total; i += P.threads) {\n${body}  }\n  }\n`;
    s += '  red[lid] = m;\n  workgroupBarrier();\n';
    s +=
      '  for (var w = 128u; w > 0u; w = w / 2u) {\n    if (lid < w) { red[lid] = max(red[lid], red[lid + w]); }\n    workgroupBarrier();\n  }\n';
    s += '  if (lid == 0u && red[0] != 0u) { atomicMax(&stats[P.slot], red[0]); }\n}\n';
    return s;
  };
  e.dispatch({
    name: 'matmul_high_maxabs',
    key: `matmul_high_maxabs:${range ? `dense:${vec}` : rank}:${groups}`,
    code,
    bindings: [
      { buffer: x.buffer, access: 'read' },
      { buffer: stats.buffer, access: 'read_write' },
    ],
    params: p,
    workgroups: foldGrid(groups),
    detail: () =>
      range ? `dense ${range.count}${vec ? ' vec4' : ''}` : `${batches > 1 ? `${batches}×` : ''}${op.R}×${op.C} rs ${op.rs} cs ${op.cs}`,
  });
}

/**
 * Packs an operand into f16 pairs (u32 words), scaled by 2^k from stats[slot]: out[b][r][c] for
 * r < Rp, c < Cp (Cp even), zero outside R×C. One thread per word; where the columns are
 * contiguous and the offset, row and batch strides, C and Cp are multiples of 4, one per two
 * words (a vec4 load, no per-element bounds or strides).
 */
function pack(
  e: Engine,
  x: GpuStorage,
  op: Operand2d,
  batches: number,
  Rp: number,
  Cp: number,
  stats: GpuStorage,
  slot: number,
): GpuStorage {
  const quads = op.cs === 1 && [op.offset, op.rs, op.C, Cp, ...op.batchStrides].every((v) => v % 4 === 0);
  const W = quads ? 4 : 2; // halves per thread
  const u = quads ? 4 : 1; // the input's index unit (vec4 or f32)
  const threads = (batches * Rp * Cp) / W;
  const out = allocElems(e, (batches * Rp * Cp) / 2);
  const rank = op.batchShape.length;
  const p = new Params()
    .u32('R', op.R)
    .u32('C', op.C / u)
    .u32('rs', op.rs / u)
    .u32('cs', op.cs)
    .u32('Rp', Rp)
    .u32('Cw', Cp / W)
    .u32('threads', threads)
    .u32('slot', slot);
  p.u32s('bs', op.batchShape)
    .u32('x_o', op.offset / u)
    .u32s(
      'x_s',
      op.batchStrides.map((st) => st / u),
    );
  const code = () => {
    let s = storageBinding(0, 'x', quads ? 'vec4<f32>' : 'f32', 'read');
    s += storageBinding(1, 'stats', 'u32', 'read');
    s += storageBinding(2, 'out', quads ? 'vec2<u32>' : 'u32', 'read_write');
    s += p.declare(3);
    s += SCALE_WGSL;
    s += `@compute @workgroup_size(256) fn main(${ENTRY_ARGS}) {\n`;
    s += `  let t = ${WG_LINEAR} * 256u + lid;\n  if (t >= P.threads) { return; }\n`;
    s += '  let sc = fg_pow2(fg_scale_exp(stats[P.slot]));\n';
    s += '  let per = P.Rp * P.Cw;\n  let b = t / per;\n  let rem = t % per;\n  let r = rem / P.Cw;\n';
    s += stridedOffsets('b', rank, 'bs', ['x']);
    if (quads) {
      s += '  let c = rem % P.Cw;\n  var v = vec4<f32>(0.0);\n';
      s += '  if (r < P.R && c < P.C) { v = x[o_x + r * P.rs + c] * sc; }\n';
      s += '  out[t] = vec2<u32>(pack2x16float(v.xy), pack2x16float(v.zw));\n}\n';
    } else {
      s += '  let c = (rem % P.Cw) * 2u;\n  var v = vec2<f32>(0.0);\n';
      s += '  if (r < P.R) {\n    let base = o_x + r * P.rs + c * P.cs;\n';
      s += '    if (c < P.C) { v.x = x[base] * sc; }\n    if (c + 1u < P.C) { v.y = x[base + P.cs] * sc; }\n  }\n';
      s += '  out[t] = pack2x16float(v);\n}\n';
    }
    return s;
  };
  e.dispatch({
    name: 'matmul_high_pack',
    key: `matmul_high_pack:${rank}:${quads}`,
    code,
    bindings: [
      { buffer: x.buffer, access: 'read' },
      { buffer: stats.buffer, access: 'read' },
      { buffer: out.buffer, access: 'read_write' },
    ],
    params: p,
    workgroups: foldGrid(Math.ceil(threads / 256)),
    detail: () => `${batches > 1 ? `${batches}×` : ''}${op.R}×${op.C} rs ${op.rs} ${quads ? 'quads' : `cs ${op.cs}`}`,
  });
  return out;
}

function ceilTo(x: number, m: number): number {
  return Math.ceil(x / m) * m;
}

/** The subgroup-matrix kernel over packed operands (see the file comment). */
export function sgmatCode(c: SgmatConfig, aL: PackLayout, bL: PackLayout, direct: boolean, p: Params): string {
  const FM = c.BM / c.SM / 16;
  const FN = c.BN / c.SN / 16;
  if (!Number.isInteger(FM) || !Number.isInteger(FN) || FM < 1 || FN < 1 || c.BK % 16 !== 0)
    fail('matmul', `subgroup-matrix tile ${c.BM}x${c.BN}x${c.BK} with ${c.SM}x${c.SN} subgroups does not split into 16x16 matrices`);
  const threads = 32 * c.SM * c.SN;
  const L = 'subgroup_matrix_left<f16, 16, 16>';
  const Rt = 'subgroup_matrix_right<f16, 16, 16>';
  const load = (type: string, ptr: string, off: string, colMajor: boolean, stride: string) =>
    c.spelling === 'template'
      ? `subgroupMatrixLoad<${type}, ${colMajor ? 'col_major' : 'row_major'}>(${ptr}, ${off}, ${stride})`
      : `subgroupMatrixLoad<${type}>(${ptr}, ${off}, ${colMajor}, ${stride})`;
  const store = (ptr: string, off: string, v: string, stride: string) =>
    c.spelling === 'template'
      ? `subgroupMatrixStore<row_major>(${ptr}, ${off}, ${v}, ${stride})`
      : `subgroupMatrixStore(${ptr}, ${off}, ${v}, false, ${stride})`;
  // staged tile geometry: rows × cols (cols contiguous) in the packed layout
  const aRows = aL === 'k' ? c.BM : c.BK;
  const aCols = aL === 'k' ? c.BK : c.BM;
  const bRows = bL === 'k' ? c.BN : c.BK;
  const bCols = bL === 'k' ? c.BK : c.BN;
  const aStride = aCols + c.pad;
  const bStride = bCols + c.pad;
  const builtin = c.sgIndex.startsWith('builtin');
  let s = 'enable f16;\nenable subgroups;\nenable chromium_experimental_subgroup_matrix;\n';
  if (c.sgIndex.endsWith('diag')) s += 'diagnostic(off, subgroup_uniformity);\n';
  s += storageBinding(0, 'a', c.staged ? 'vec4<u32>' : 'f16', 'read');
  s += storageBinding(1, 'b', c.staged ? 'vec4<u32>' : 'f16', 'read');
  s += storageBinding(2, 'stats', 'u32', 'read');
  s += storageBinding(3, 'c', 'f32', 'read_write');
  s += p.declare(4);
  s += SCALE_WGSL;
  const nbuf = c.staged && c.dbuf ? 2 : 1;
  if (c.staged)
    s += `var<workgroup> As: array<f16, ${nbuf * aRows * aStride}>;\nvar<workgroup> Bs: array<f16, ${nbuf * bRows * bStride}>;\n`;
  s += `var<workgroup> Cs: array<f32, ${c.SM * c.SN * 256}>;\n`;
  const sgArgs = builtin ? ', @builtin(subgroup_id) sgid: u32, @builtin(subgroup_invocation_id) sgl: u32' : '';
  s += `@compute @workgroup_size(${threads}) fn main(${ENTRY_ARGS}${sgArgs}) {\n`;
  s += `  let wg = ${WG_LINEAR};\n  let perBatch = P.tilesM * P.tilesN;\n  if (wg >= perBatch * P.batches) { return; }\n`;
  s += '  let batch = wg / perBatch;\n  let tile = wg % perBatch;\n';
  s += `  let width = ${c.group}u * P.tilesN;\n  let firstM = (tile / width) * ${c.group}u;\n  let gsz = min(P.tilesM - firstM, ${c.group}u);\n`;
  s += '  let tm = firstM + (tile % width) % gsz;\n  let tn = (tile % width) / gsz;\n';
  s += `  let m0 = tm * ${c.BM}u;\n  let n0 = tn * ${c.BN}u;\n`;
  s += builtin ? '  let sg = sgid;\n' : '  let sg = subgroupBroadcastFirst(lid / 32u);\n';
  s += `  let sm = sg / ${c.SN}u;\n  let sn = sg % ${c.SN}u;\n`;
  s += '  let aBase = batch * P.Mp * P.Kp;\n  let bBase = batch * P.Np * P.Kp;\n';
  for (let i = 0; i < FM; i++) for (let j = 0; j < FN; j++) s += `  var acc${i}_${j}: subgroup_matrix_result<f32, 16, 16>;\n`;
  // offsets (in halves) of the left matrix i at k-step kk and the right matrix j
  const aOff = (i: string, kk: string) => {
    const m = `(sm * ${c.BM / c.SM}u + ${i} * 16u)`;
    if (c.staged) return `${c.dbuf ? 'ab + ' : ''}${aL === 'k' ? `${m} * ${aStride}u + ${kk}` : `${kk} * ${aStride}u + ${m}`}`;
    return aL === 'k' ? `aBase + (m0 + ${m}) * P.Kp + k0 + ${kk}` : `aBase + (k0 + ${kk}) * P.Mp + m0 + ${m}`;
  };
  const bOff = (j: string, kk: string) => {
    const n = `(sn * ${c.BN / c.SN}u + ${j} * 16u)`;
    if (c.staged) return `${c.dbuf ? 'bb + ' : ''}${bL === 'k' ? `${n} * ${bStride}u + ${kk}` : `${kk} * ${bStride}u + ${n}`}`;
    return bL === 'k' ? `bBase + (n0 + ${n}) * P.Kp + k0 + ${kk}` : `bBase + (k0 + ${kk}) * P.Np + n0 + ${n}`;
  };
  const aPtr = c.staged ? '&As' : '&a';
  const bPtr = c.staged ? '&Bs' : '&b';
  const aLd = c.staged ? `${aStride}u` : aL === 'k' ? 'P.Kp' : 'P.Mp';
  const bLd = c.staged ? `${bStride}u` : bL === 'k' ? 'P.Kp' : 'P.Np';
  // staging: rows × cols halves from global row `row0`, col `col0`, global row length G, through
  // registers `pa<l>` / `pb<l>` (one vec4<u32> = 8 halves each): `fetch` loads them, `put` stores
  // them into the workgroup tile
  const geom = (X: 'a' | 'b') => {
    const L = X === 'a' ? aL : bL;
    const rows = X === 'a' ? aRows : bRows;
    const cols = X === 'a' ? aCols : bCols;
    const wideOrigin = X === 'a' ? 'm0' : 'n0';
    const wideLen = X === 'a' ? 'P.Mp' : 'P.Np';
    const base = X === 'a' ? 'aBase' : 'bBase';
    const units = (rows * cols) / 8;
    return { L, rows, cols, wideOrigin, wideLen, base, units, per: Math.ceil(units / threads), guard: units % threads !== 0 };
  };
  const regDecl = (X: 'a' | 'b') => {
    let t = '';
    for (let l = 0; l < geom(X).per; l++) t += `  var p${X}${l} = vec4<u32>(0u);\n`;
    return t;
  };
  const fetch = (X: 'a' | 'b', kx: string) => {
    const g = geom(X);
    const [row0, col0, G] = g.L === 'k' ? [g.wideOrigin, kx, 'P.Kp'] : [kx, g.wideOrigin, g.wideLen];
    let t = '';
    for (let l = 0; l < g.per; l++) {
      const u = `(lid + ${l * threads}u)`;
      t += `    ${g.guard ? `if (${u} < ${g.units}u) ` : ''}{\n`;
      t += `      let r = ${u} / ${g.cols / 8}u;\n      let c8 = ${u} % ${g.cols / 8}u;\n`;
      t += `      p${X}${l} = ${X}[(${g.base} + (${row0} + r) * ${G} + ${col0} + c8 * 8u) / 8u];\n    }\n`;
    }
    return t;
  };
  const put = (X: 'a' | 'b', base = '') => {
    const g = geom(X);
    const stride = X === 'a' ? aStride : bStride;
    const S = `${X.toUpperCase()}s`;
    let t = '';
    for (let l = 0; l < g.per; l++) {
      const u = `(lid + ${l * threads}u)`;
      t += `    ${g.guard ? `if (${u} < ${g.units}u) ` : ''}{\n`;
      t +=
        c.align8 && stride % 8 === 0
          ? `      let d = ${base}((${u} / ${g.cols / 8}u) * ${stride / 8}u + ${u} % ${g.cols / 8}u) * 8u;\n`
          : `      let d = ${base}(${u} / ${g.cols / 8}u) * ${stride}u + (${u} % ${g.cols / 8}u) * 8u;\n`;
      for (let q = 0; q < 4; q++)
        t += `      { let h = bitcast<vec2<f16>>(p${X}${l}[${q}]); ${S}[d + ${2 * q}u] = h.x; ${S}[d + ${2 * q + 1}u] = h.y; }\n`;
      t += '    }\n';
    }
    return t;
  };
  const aSize = aRows * aStride;
  const bSize = bRows * bStride;
  if (c.staged) {
    s += regDecl('a') + regDecl('b');
    if (c.prefetch || c.dbuf) s += fetch('a', '0u') + fetch('b', '0u');
    if (c.dbuf) s += `${put('a', '')}${put('b', '')}  workgroupBarrier();\n`;
  }
  s += '  for (var t = 0u; t < P.tilesK; t++) {\n';
  s += `    let k0 = t * ${c.BK}u;\n`;
  if (c.staged && c.dbuf) {
    s += `    let ab = (t % 2u) * ${aSize}u;\n    let bb = (t % 2u) * ${bSize}u;\n`;
    s += `    let more = t + 1u < P.tilesK;\n    if (more) {\n  ${fetch('a', `k0 + ${c.BK}u`)}  ${fetch('b', `k0 + ${c.BK}u`)}    }\n`;
  } else if (c.staged) {
    if (!c.prefetch) s += fetch('a', 'k0') + fetch('b', 'k0');
    s += put('a') + put('b');
    s += '    workgroupBarrier();\n';
    if (c.prefetch) s += `    if (t + 1u < P.tilesK) {\n  ${fetch('a', `k0 + ${c.BK}u`)}  ${fetch('b', `k0 + ${c.BK}u`)}    }\n`;
  }
  for (let kk = 0; kk < c.BK / 16; kk++) {
    s += '    {\n';
    for (let i = 0; i < FM; i++) s += `      let l${i} = ${load(L, aPtr, aOff(`${i}u`, `${kk * 16}u`), aL === 'w', aLd)};\n`;
    for (let j = 0; j < FN; j++) s += `      let r${j} = ${load(Rt, bPtr, bOff(`${j}u`, `${kk * 16}u`), bL === 'k', bLd)};\n`;
    for (let i = 0; i < FM; i++)
      for (let j = 0; j < FN; j++) s += `      acc${i}_${j} = subgroupMatrixMultiplyAccumulate(l${i}, r${j}, acc${i}_${j});\n`;
    s += '    }\n';
  }
  if (c.staged && c.dbuf) {
    const nb = `((t + 1u) % 2u)`;
    s += `    if (more) {\n  ${put('a', `${nb} * ${aSize}u + `)}  ${put('b', `${nb} * ${bSize}u + `)}    }\n`;
    s += '    workgroupBarrier();\n';
  } else if (c.staged) s += '    workgroupBarrier();\n';
  s += '  }\n';
  // epilogue: undo the operand scales (two exact power-of-two multiplies), then store
  s += '  let ua = fg_pow2(-fg_scale_exp(stats[0]));\n  let ub = fg_pow2(-fg_scale_exp(stats[1]));\n';
  s += '  let cb = batch * P.M * P.N;\n';
  s += `  let interior = m0 + ${c.BM}u <= P.M && n0 + ${c.BN}u <= P.N;\n`;
  const rowOf = (i: number) => `m0 + sm * ${c.BM / c.SM}u + ${i * 16}u`;
  const colOf = (j: number) => `n0 + sn * ${c.BN / c.SN}u + ${j * 16}u`;
  for (let i = 0; i < FM; i++)
    for (let j = 0; j < FN; j++)
      s += `  acc${i}_${j} = subgroupMatrixScalarMultiply(subgroupMatrixScalarMultiply(acc${i}_${j}, ua), ub);\n`;
  if (direct) {
    s += '  if (interior) {\n';
    for (let i = 0; i < FM; i++)
      for (let j = 0; j < FN; j++) s += `    ${store('&c', `cb + (${rowOf(i)}) * P.N + ${colOf(j)}`, `acc${i}_${j}`, 'P.N')};\n`;
    s += '  } else {\n';
  } else s += '  {\n';
  s += builtin ? '    let lane = sgl;\n' : '    let lane = lid % 32u;\n';
  for (let i = 0; i < FM; i++)
    for (let j = 0; j < FN; j++) {
      s += `    ${store('&Cs', 'sg * 256u', `acc${i}_${j}`, '16u')};\n    workgroupBarrier();\n`;
      s += `    for (var e = lane; e < 256u; e += 32u) {\n      let m = ${rowOf(i)} + e / 16u;\n      let n = ${colOf(j)} + e % 16u;\n`;
      s += '      if (m < P.M && n < P.N) { c[cb + m * P.N + n] = Cs[sg * 256u + e]; }\n    }\n    workgroupBarrier();\n';
    }
  s += '  }\n}\n';
  return s;
}

function operand2d(v: View, wide: number, kDim: number, layout: PackLayout, batchShape: number[], batchStrides: number[]): Operand2d {
  const W = v.shape[wide];
  const K = v.shape[kDim];
  // size-1 dims have meaningless strides
  const ws = W === 1 ? 0 : v.strides[wide];
  const ks = K === 1 ? 0 : v.strides[kDim];
  return layout === 'k'
    ? { R: W, C: K, rs: ws, cs: ks, offset: v.offset, batchShape, batchStrides }
    : { R: K, C: W, rs: ks, cs: ws, offset: v.offset, batchShape, batchStrides };
}

/** K contiguous ('k') unless the wide dim is the contiguous one. */
function layoutFor(wideStride: number, kStride: number, W: number, K: number): PackLayout {
  if (K === 1) return 'w';
  if (W === 1) return 'k';
  return Math.abs(wideStride) < Math.abs(kStride) ? 'w' : 'k';
}

/** The packed f16 operands of a product (see `packOperands`). */
export interface PackedOperands {
  ap: GpuStorage;
  bp: GpuStorage;
  /** word 0: bits of max|A|, word 1: bits of max|B| */
  stats: GpuStorage;
  aL: PackLayout;
  bL: PackLayout;
  Mp: number;
  Np: number;
  Kp: number;
}

/**
 * Queues the max-abs and pack passes of `a` [..., M, K] and `b` [..., K, N] for tiles of `c`:
 * A as [batch][Mp][Kp] ('k') or [batch][Kp][Mp] ('w'), B as [batch][Np][Kp] ('k') or
 * [batch][Kp][Np] ('w'), f16 pairs in u32 words, zero outside the operand.
 */
export function packOperands(e: Engine, a: View, b: View, c: Pick<SgmatConfig, 'BM' | 'BN' | 'BK'>): PackedOperands {
  const r = a.shape.length;
  const M = a.shape[r - 2];
  const K = a.shape[r - 1];
  const N = b.shape[r - 1];
  const batchShape = a.shape.slice(0, r - 2);
  const batches = sizeOf(batchShape);
  const bc = collapse(batchShape, [{ strides: a.strides.slice(0, r - 2) }, { strides: b.strides.slice(0, r - 2) }]);
  const aL = layoutFor(a.strides[r - 2], a.strides[r - 1], M, K);
  const bL = layoutFor(b.strides[r - 1], b.strides[r - 2], N, K);
  const Mp = ceilTo(M, c.BM);
  const Np = ceilTo(N, c.BN);
  const Kp = ceilTo(K, c.BK);
  const aOp = operand2d(a, r - 2, r - 1, aL, bc.shape, bc.strides[0]);
  const bOp = operand2d(b, r - 1, r - 2, bL, bc.shape, bc.strides[1]);
  const aBuf = gpuOf('matmul', a);
  const bBuf = gpuOf('matmul', b);
  const stats = fill(e, 4, 0, 'uint32');
  maxAbs(e, aBuf, aOp, batches, stats, 0);
  maxAbs(e, bBuf, bOp, batches, stats, 1);
  const ap = pack(e, aBuf, aOp, batches, aL === 'k' ? Mp : Kp, aL === 'k' ? Kp : Mp, stats, 0);
  const bp = pack(e, bBuf, bOp, batches, bL === 'k' ? Np : Kp, bL === 'k' ? Kp : Np, stats, 1);
  return { ap, bp, stats, aL, bL, Mp, Np, Kp };
}

/** Storages a 'high' product queued, for the timing of the core kernel alone (benchmarks). */
export interface PackedProduct {
  out: GpuStorage;
  run: () => void;
  release: () => void;
}

/**
 * `C[b] = A[b]·B[b]` with f16 operands and f32 accumulation (see the file comment). The caller
 * checks that the device offers f16 subgroup matrices of 16×16×16 with a subgroup size of 32.
 */
export function matmulHigh(e: Engine, a: View, b: View): GpuStorage {
  const r = a.shape.length;
  const [M, K, N] = [a.shape[r - 2], a.shape[r - 1], b.shape[r - 1]];
  const batches = sizeOf(a.shape.slice(0, r - 2));
  const split = sgOverride || sgPatch || batches * M * N === 0 ? null : splitKHigh(M, N, K, batches, hopperClass(e));
  if (split && split.S > 1) {
    // split-K (see `splitK` in matmul.ts): the chunks as batches of one product, then their sum
    const [ac, bc] = splitKViews(a, b, split.S);
    const prod = prepareHigh(e, ac, bc, split.c);
    prod.run();
    prod.release();
    return sumSplitK(e, prod.out, a, b, split.S);
  }
  const prod = prepareHigh(e, a, b);
  prod.run();
  prod.release();
  return prod.out;
}

/**
 * Queues the max-abs and pack passes and returns the core kernel as `run` (queued once by
 * `matmulHigh`; benchmarks may queue it again to time it alone) and `release` for the temporaries.
 */
export function prepareHigh(e: Engine, a: View, b: View, forced?: SgmatConfig): PackedProduct {
  const r = a.shape.length;
  const M = a.shape[r - 2];
  const K = a.shape[r - 1];
  const N = b.shape[r - 1];
  const batchShape = a.shape.slice(0, r - 2);
  const batches = sizeOf(batchShape);
  const out = allocElems(e, batches * M * N);
  const noop = { out, run: () => {}, release: () => {} };
  if (batches * M * N === 0) return noop;
  if (K === 0) {
    e.free(out);
    return { ...noop, out: fill(e, batches * M * N, 0, 'float32') };
  }
  const c = forced ?? chooseSgmat(e, M, N, batches);
  const { ap, bp, stats, aL, bL, Mp, Np, Kp } = packOperands(e, a, b, c);
  const direct = N % 4 === 0;
  const tilesM = Mp / c.BM;
  const tilesN = Np / c.BN;
  const p = new Params()
    .u32('M', M)
    .u32('N', N)
    .u32('Mp', Mp)
    .u32('Np', Np)
    .u32('Kp', Kp)
    .u32('tilesM', tilesM)
    .u32('tilesN', tilesN)
    .u32('tilesK', Kp / c.BK)
    .u32('batches', batches);
  const key = `matmul_high:${c.BM}x${c.BN}x${c.BK}_${c.SM}x${c.SN}_${c.staged}_${c.pad}_${c.group}_${c.spelling}_${c.sgIndex}_${c.prefetch}_${c.dbuf === true}_${c.align8 === true}:${aL}${bL}:${direct}`;
  const run = () =>
    e.dispatch({
      name: 'matmul_high',
      key,
      code: () => sgmatCode(c, aL, bL, direct, p),
      bindings: [
        { buffer: ap.buffer, access: 'read' },
        { buffer: bp.buffer, access: 'read' },
        { buffer: stats.buffer, access: 'read' },
        { buffer: out.buffer, access: 'read_write' },
      ],
      params: p,
      workgroups: foldGrid(tilesM * tilesN * batches),
      detail: () => `${M}×${N}×${K}${batches > 1 ? ` ×${batches}` : ''} ${aL}${bL} tile ${c.BM}x${c.BN}x${c.BK}`,
    });
  const release = () => {
    e.free(ap);
    e.free(bp);
    e.free(stats);
  };
  return { out, run, release };
}
