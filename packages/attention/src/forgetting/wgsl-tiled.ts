import { storeRowSums } from '../wgsl/reduce.js';
import { type RowLayout, rowAccessor } from '../wgsl/rows.js';
import { joinPrefetch, loadTile, prefetchRows, prefetchTile } from '../wgsl/tiles.js';
import { comp, dv, lines, range } from '../wgsl/util.js';

/**
 * WGSL for fused forgetting attention. Three kernels share one scheme (FlashAttention-2 style,
 * float32 throughout):
 *
 * - forward: a workgroup owns a query tile (resident in workgroup memory, pre-scaled by
 *   `scale·log2 e`) and loops over key tiles; online softmax in base 2; writes o and the
 *   base-2 log-normaliser `lse2`;
 * - dK/dV: a workgroup owns a key tile (K and V resident) and loops over the query tiles that see
 *   it, accumulating dK, dV and the column sums of dS (the key part of dΛ);
 * - dQ: a workgroup owns a query tile (Q and dO resident) and loops over key tiles, accumulating
 *   dQ and the row sums of dS (the query part of dΛ).
 *
 * Each thread owns a `TM×TN` micro-tile of the score tile: TM consecutive rows and TN columns
 * strided by the number of column threads, so that reads of the resident operand broadcast and
 * reads of the streamed operand (rows padded by one vec4) hit distinct banks. Products are either
 * "dot form" `C[a][b] = Σ_k A[a][k]·B[b][k]` (scores) or "outer form" `C[a][d] += Σ_k A[k][a]·B[k][d]`
 * (o, dq, dk, dv, reading P or dS from workgroup memory as vec4 over a). D is padded to a
 * multiple of 4 with zeros; any D ≤ 256 works.
 *
 * ACP: a per-(b, h) pass (`acpBoundsWGSL`) turns Λ and δ into the first kept 64-key tile of each
 * 64-query tile and the last 64-query tile keeping each 64-key tile; kernels whose tiles are
 * smaller than 64 use those bounds at their own granularity, so every implementation prunes the
 * same pairs.
 *
 * Sliding window (`window`, the uniform `P.win`): a tile loop starts at the tile holding the
 * window start of the tile's first row (forward, dQ) or ends after the last query that sees the
 * tile's last key (dK/dV); pairs outside the window in the tiles visited are masked like the
 * causal ones. A forward row whose first visited tile lies wholly before its window sums
 * weights 1 of −1e30 scores until its first kept key, whose rescaling by exp2(−1e30 − m) = 0
 * erases them (every row keeps its own position).
 */

export interface FoxTileConfig {
  /** Query rows per tile (divides 64). */
  bq: number;
  /** Key rows per tile (divides 64). */
  bk: number;
  /** Micro-tile rows / columns per thread (4 or 8). */
  tm: number;
  tn: number;
  /**
   * Software pipelining: the next streamed tile (K and V in the forward and dQ kernels, Q and dO
   * in the dK/dV kernel) is read from global memory into registers while the current one is
   * computed, and stored to workgroup memory at the top of the next step (the forward kernel
   * then keeps K and V in separate arrays).
   */
  pf?: boolean;
}

export interface FoxKernelSpec extends RowLayout {
  D: number;
  /** Forget gates present (else plain causal softmax attention: Λ ≡ 0). */
  gated: boolean;
  /** Read ACP bounds. */
  acp: boolean;
  /** Sliding window `P.win` (absent: full causal). */
  window?: boolean;
  tiles: FoxTileConfig;
  /**
   * Head dim and loop bounds from uniforms (`P.Dr`, `P.loopDV`, `P.loopBK`, `P.loopBQ`) instead
   * of constants; `D` is then the largest head dim the kernel takes (workgroup arrays are sized
   * for it) and q, k, v, dO are read as scalars. One pipeline then serves every head dim of a
   * class, and the loops are not unrolled: for software adapters (lavapipe), whose LLVM compile
   * takes seconds per kernel. Hardware drivers get constants.
   */
  dynamic?: boolean;
}

/** Workgroup-memory bytes each kernel needs for a tile configuration. */
export function foxSmemBytes(kind: 'fwd' | 'dkv' | 'dq', D: number, t: FoxTileConfig): number {
  const DV = dv(D);
  const nc = (kind === 'dkv' ? t.bq : t.bk) / t.tn;
  const vec4s =
    kind === 'fwd'
      ? t.bq * DV + (t.pf ? 2 : 1) * t.bk * (DV + 1) + (t.bk * t.bq) / 4
      : kind === 'dkv'
        ? 2 * t.bk * DV + 2 * t.bq * (DV + 1) + (2 * t.bq * t.bk) / 4
        : 2 * t.bq * DV + 2 * t.bk * (DV + 1) + (t.bk * t.bq) / 4;
  const rows = kind === 'dkv' ? t.bk : t.bq;
  const floats = rows * nc + 3 * Math.max(t.bq, t.bk);
  return vec4s * 16 + floats * 4;
}

export function threadsOf(kind: 'fwd' | 'dkv' | 'dq', t: FoxTileConfig): number {
  return kind === 'dkv' ? (t.bk / t.tm) * (t.bq / t.tn) : (t.bq / t.tm) * (t.bk / t.tn);
}

function header(spec: FoxKernelSpec, rows: number, cols: number): string {
  const { D, tiles } = spec;
  const DV = dv(D);
  const nc = cols / tiles.tn;
  const dims = spec.dynamic ? `const DVMAX = ${DV}u;` : `const D = ${D}u;\nconst DV = ${DV}u;\nconst DVP = ${DV + 1}u;`;
  return `${dims}
const TM = ${tiles.tm}u;
const TN = ${tiles.tn}u;
const NC = ${nc}u;
const NT = ${(rows / tiles.tm) * nc}u;
const NEG = -1.0e30;
const LOG2E = 1.4426950408889634;`;
}

/**
 * Λ at key position t (0 without gates). Kernels use it relative to Λ at the first position of
 * the query's 64-tile, scaled by log2 e: `(Λ_t − Λ_ref)·log2 e` keeps the float32 values small
 * where the weights matter (|Λ| itself grows without bound along the sequence).
 */
export function lamFn(gated: boolean): string {
  return gated
    ? 'fn lamAt(b: u32, t: u32, h: u32) -> f32 { return lam[(b * P.Tk + t) * P.H + h + P.lam_offset]; }'
    : 'fn lamAt(b: u32, t: u32, h: u32) -> f32 { return 0.0; }';
}

/**
 * Dot-form micro-tile: `acc_e_f += dot(A[rowA(e)][c], B[rowB(f)][c])` over the DV groups, as a
 * chain of four `fma`s (`s += dot(a, b)` costs a multiply, three fmas and an add: a dot product
 * may not be fused into the running sum; the chain was 2–3% faster on an H200).
 */
function dotTile(
  acc: string,
  A: string,
  rowA: (e: number) => string,
  B: string,
  rowB: (f: number) => string,
  tm: number,
  tn: number,
): string {
  return `  for (var c = 0u; c < DV; c++) {
${lines(tm, (e) => `    let a${e} = ${A}[(${rowA(e)}) * DV + c];`)}
${lines(tn, (f) => `    let b${f} = ${B}[(${rowB(f)}) * DVP + c];`)}
${range(tm)
  .flatMap((e) =>
    range(tn).map((f) => `    ${acc}${e}_${f} = ${comp.reduce((r, x) => `fma(a${e}.${x}, b${f}.${x}, ${r})`, `${acc}${e}_${f}`)};`),
  )
  .join('\n')}
  }`;
}

function decl(name: string, tm: number, tn: number, init: string): string {
  return range(tm)
    .flatMap((e) => range(tn).map((f) => `  var ${name}${e}_${f} = ${init};`))
    .join('\n');
}

/**
 * `acc<e>_<f> = A[row e] · B[column f]` over D for the thread's TM×TN micro-tile: A holds the
 * thread's rows (`tr·TM + e`), B its columns (`tc + NC·f`, DVP-padded).
 */
function scoreTile(acc: string, A: string, B: string, nc: number, tm: number, tn: number): string {
  return `${decl(acc, tm, tn, '0.0')}
${dotTile(
  acc,
  A,
  (e) => `tr * TM + ${e}u`,
  B,
  (f) => `tc + ${nc * f}u`,
  tm,
  tn,
)}`;
}

/**
 * Stores the thread's micro-tile values `<val><e>_<f>` transposed into a workgroup array, as vec4
 * groups of four of its rows: `dst[(tc + NC·f)·(rows/4) + tr·TM/4 + r]`.
 */
function stageTransposed(dst: string, val: string, rows: 'BQ' | 'BK', nc: number, tm: number, tn: number): string {
  const e4 = tm / 4;
  return range(tn)
    .flatMap((f) =>
      range(e4).map(
        (r) =>
          `    ${dst}[(tc + ${nc * f}u) * (${rows} / 4u) + tr * ${e4}u + ${r}u] = vec4<f32>(${range(4)
            .map((x) => `${val}${4 * r + x}_${f}`)
            .join(', ')});`,
      ),
    )
    .join('\n');
}

/** One product of a tile step: `acc += staged(weights) · src(rows)`, read through locals w and x. */
interface TileProduct {
  w: string;
  staged: string;
  x: string;
  src: string;
  acc: string;
}

/**
 * The second product of each tile step (P·V, dS·K, Pᵀ·dO, dSᵀ·Q): after a barrier,
 * `acc<e>_<f> += staged[k][row e] · src[k][vec4 group f]` over the `bound` rows k of the tile
 * (`stageTransposed` wrote `staged`, `rows` of the thread tile per k).
 */
function accumulateTile(
  k: string,
  bound: string,
  rows: 'BQ' | 'BK',
  terms: TileProduct[],
  g: { fg: number; guard: (f: number) => string },
  nc: number,
  tm: number,
): string {
  const e4 = tm / 4;
  return `    workgroupBarrier();
    for (var ${k} = 0u; ${k} < ${bound}; ${k}++) {
${lines(e4, (r) => terms.map((t) => `      let ${t.w}${r} = ${t.staged}[${k} * (${rows} / 4u) + tr * ${e4}u + ${r}u];`).join('\n'))}
${lines(
  g.fg,
  (f) => `      if (${g.guard(f)}) {
${terms.map((t) => `        let ${t.x} = ${t.src}[${k} * DVP + tc + ${nc * f}u];`).join('\n')}
${lines(tm, (e) => terms.map((t) => `        ${t.acc}${e}_${f} = fma(vec4<f32>(${t.w}${Math.floor(e / 4)}.${comp[e % 4]}), ${t.x}, ${t.acc}${e}_${f});`).join('\n'))}
      }`,
)}
    }`;
}

/** Owned vec4 groups of D: g = tc + NC·f for f < FG (guarded when NC·FG may exceed DV). */
function groups(spec: FoxKernelSpec, nc: number): { fg: number; guard: (f: number) => string } {
  const DV = dv(spec.D);
  const fg = Math.ceil(DV / nc);
  return { fg, guard: (f) => (spec.dynamic || nc * fg > DV ? `tc + ${nc * f}u < DV` : 'true') };
}

/** First statements of every kernel body: the runtime head dim in dynamic mode. */
function prologue(spec: FoxKernelSpec): string {
  return spec.dynamic ? '  let DV = P.loopDV;\n  let DVP = DV + 1u;\n' : '';
}

/** The `@compute` entry point and the (b, h) pair of the workgroup (`wid.y`). */
function entry(spec: FoxKernelSpec, threads: number): string {
  return `@compute @workgroup_size(${threads})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
${prologue(spec)}  let lin = lid;
  let bh = wid.y;
  let b = bh / P.H;
  let h = bh % P.H;`;
}

/** The workgroup's query tile (the last tiles first: they see the most keys) and the thread's rows. */
const QUERY_TILE = `  let nqt = (P.Tq + BQ - 1u) / BQ;
  let i0 = (nqt - 1u - wid.x) * BQ;
  let off = P.Tk - P.Tq;
  let tr = lin / NC;
  let tc = lin % NC;
  let ib = i0 + tr * TM;`;

/**
 * Key tiles a query tile visits: causal end, start from ACP (`first`) when pruning and from the
 * window start of the tile's first query with a window.
 */
function keyTileRange(acp: boolean, window: boolean): string {
  return `  let pLast = min(i0 + BQ, P.Tq) - 1u + off;
  var kStart = 0u;
${acp ? '  kStart = u32(first[bh * P.nqb64 + i0 / 64u + P.first_offset]) * 64u;' : ''}
${window ? `${WINDOW_START('i0 + off')}\n` : ''}  let kt0 = kStart / BK;
  let kt1 = pLast / BK;`;
}

/** `kStart = max(kStart, p − win + 1)` for the first query position `p` (a WGSL expression). */
export const WINDOW_START = (p: string) => `  if (${p} + 1u > P.win) { kStart = max(kStart, ${p} + 1u - P.win); }`;

/** ` && <key> + P.win > <query position>` with a window: the key lies within the query's window. */
export function inWindow(window: boolean | undefined, key: string, pos: string): string {
  return window ? ` && ${key} + P.win > ${pos}` : '';
}

/**
 * `qEnd = min(qEnd, last + win − off)` (0 when no query sees the key `last`): the query rows
 * whose window reaches the key `last`, the last of a key tile.
 */
export const WINDOW_END = (last: string) =>
  `  {
    let wl = ${last} + P.win;
    qEnd = select(0u, min(qEnd, wl - off), wl > off);
  }`;

/** Λ of the current key tile, relative to the query tile's reference, in base 2. */
const LAMBDA_KEYS = '    for (var x = lid; x < BK; x += NT) { lamK[x] = (lamAt(b, min(j0 + x, P.Tk - 1u), h) - lamRef) * LOG2E; }';

// ---------------------------------------------------------------------------------------------
// forward

export function foxForwardWGSL(spec: FoxKernelSpec): string {
  const { D, gated, acp, tiles } = spec;
  const dyn = spec.dynamic === true;
  const { bq, bk, tm, tn } = tiles;
  const pf = tiles.pf === true;
  const nc = bk / tn;
  const nt = (bq / tm) * nc;
  const { fg, guard } = groups(spec, nc);
  // K and V: one shared array loaded twice per step, or (pipelined) two arrays and registers
  const Ks = pf ? 'Ks' : 'KVs';
  const Vs = pf ? 'Vs' : 'KVs';
  const next = pf
    ? joinPrefetch([
        prefetchTile(spec, bk, nt, 'P.Tk', true, [
          { v: 'kr', dst: 'Ks', ld: 'ldK' },
          { v: 'vr', dst: 'Vs', ld: 'ldV' },
        ]),
        prefetchRows(bk, nt, [
          { v: 'lr', dst: 'lamK', read: (t) => `lamAt(b, min(${t}, P.Tk - 1u), h)`, store: (v) => `(${v} - lamRef) * LOG2E` },
        ]),
      ])
    : null;
  // across the NC threads of a score row: through workgroup memory
  const add = (a: string, b: string) => `${a} + ${b}`;
  const maxOf = (a: string, b: string) => `max(${a}, ${b})`;
  // `red` (workgroup memory) holds one partial per (row, thread); read as vec4 when NC allows
  const red4 = nc % 4 === 0;
  const redPut = (e: number, v: string) =>
    red4 ? `    red[(tr * TM + ${e}u) * (NC / 4u) + tc / 4u][tc % 4u] = ${v};` : `    red[(tr * TM + ${e}u) * NC + tc] = ${v};`;
  const redFold = (e: number, v: string, comb: (a: string, b: string) => string) =>
    red4
      ? `    for (var c = 0u; c < NC / 4u; c++) {\n      let w = red[(tr * TM + ${e}u) * (NC / 4u) + c];\n      ${v} = ${comb(v, comb(comb('w.x', 'w.y'), comb('w.z', 'w.w')))};\n    }`
      : `    for (var c = 0u; c < NC; c++) { ${v} = ${comb(v, `red[(tr * TM + ${e}u) * NC + c]`)}; }`;
  const rowMax = (e: number) => `    var mt${e} = NEG;\n${redFold(e, `mt${e}`, maxOf)}`;
  return `${header(spec, bq, bk)}
const BQ = ${bq}u;
const BK = ${bk}u;
var<workgroup> Qs: array<vec4<f32>, ${bq * dv(D)}>;
${pf ? `var<workgroup> Ks: array<vec4<f32>, ${bk * (dv(D) + 1)}>;\nvar<workgroup> Vs: array<vec4<f32>, ${bk * (dv(D) + 1)}>;` : `var<workgroup> KVs: array<vec4<f32>, ${bk * (dv(D) + 1)}>;`}
var<workgroup> Pt: array<vec4<f32>, ${(bk * bq) / 4}>;
${red4 ? `var<workgroup> red: array<vec4<f32>, ${(bq * nc) / 4}>;\n` : `var<workgroup> red: array<f32, ${bq * nc}>;\n`}var<workgroup> lamK: array<f32, ${bk}>;
${rowAccessor(spec, 'q', 'P.Tq', 'ldQ', false)}
${rowAccessor(spec, 'k', 'P.Tk', 'ldK', false)}
${rowAccessor(spec, 'v', 'P.Tk', 'ldV', false)}
${rowAccessor(spec, 'o', 'P.Tq', 'stO', true)}
${lamFn(gated)}

${entry(spec, nt)}
${QUERY_TILE}
${loadTile('  ', 'BQ', 'i', 'i0', 'P.Tq', false, [{ v: 'val', dst: 'Qs', ld: 'ldQ', scaled: true }])}
  let lamRef = lamAt(b, (i0 / 64u) * 64u + off, h);
${lines(tm, (e) => `  let lq${e} = (lamAt(b, min(ib + ${e}u, P.Tq - 1u) + off, h) - lamRef) * LOG2E;`)}
${keyTileRange(acp, spec.window === true)}
${lines(tm, (e) => `  var m${e} = NEG;\n  var l${e} = 0.0;`)}
${range(tm)
  .flatMap((e) => range(fg).map((f) => `  var acc${e}_${f} = vec4<f32>(0.0);`))
  .join('\n')}
${next ? `${next.decl}${next.load('kt0 * BK')}` : ''}  for (var kt = kt0; kt <= kt1; kt++) {
    let j0 = kt * BK;
    workgroupBarrier();
${
  next
    ? `${next.store}    workgroupBarrier();\n    if (kt < kt1) {\n${next.load('j0 + BK')}    }`
    : `${loadTile('    ', 'BK', 'j', 'j0', 'P.Tk', true, [{ v: 'val', dst: 'KVs', ld: 'ldK' }])}\n${LAMBDA_KEYS}\n    workgroupBarrier();`
}
${scoreTile('s', 'Qs', Ks, nc, tm, tn)}
${lines(tn, (f) => `    let lk${f} = lamK[tc + ${nc * f}u];\n    let jc${f} = j0 + tc + ${nc * f}u;`)}
${range(tm)
  .flatMap((e) =>
    range(tn).map(
      (f) =>
        `    s${e}_${f} = select(NEG, s${e}_${f} + lq${e} - lk${f}, jc${f} <= ib + ${e}u + off${inWindow(spec.window, `jc${f}`, `ib + ${e}u + off`)});`,
    ),
  )
  .join('\n')}
${lines(tm, (e) => redPut(e, `max(${range(tn).reduce((acc, f) => (acc ? `max(${acc}, s${e}_${f})` : `s${e}_${f}`), '')}, NEG)`))}
    workgroupBarrier();
${pf ? '' : loadTile('    ', 'BK', 'j', 'j0', 'P.Tk', true, [{ v: 'val', dst: 'KVs', ld: 'ldV' }])}
${lines(
  tm,
  (e) => `${rowMax(e)}
    let mn${e} = max(m${e}, mt${e});
    let al${e} = exp2(m${e} - mn${e});
    m${e} = mn${e};
${lines(tn, (f) => `    let p${e}_${f} = exp2(s${e}_${f} - mn${e});`)}
    l${e} = l${e} * al${e} + ${range(tn)
      .map((f) => `p${e}_${f}`)
      .reduce(add)};
${lines(fg, (f) => `    acc${e}_${f} *= al${e};`)}`,
)}
${stageTransposed('Pt', 'p', 'BQ', nc, tm, tn)}
${accumulateTile('j', dyn ? 'P.loopBK' : 'BK', 'BQ', [{ w: 'pv', staged: 'Pt', x: 'vv', src: Vs, acc: 'acc' }], { fg, guard }, nc, tm)}
  }
  workgroupBarrier();
${lines(tm, (e) => redPut(e, `l${e}`))}
  workgroupBarrier();
${lines(
  tm,
  (e) => `  {
    let i = ib + ${e}u;
    var lt = 0.0;
${redFold(e, 'lt', add)}
    if (i < P.Tq) {
      let inv = 1.0 / lt;
${lines(fg, (f) => `      if (${guard(f)}) { stO(b, i, h, tc + ${nc * f}u, acc${e}_${f} * inv); }`)}
      if (tc == 0u) { lse2[bh * P.Tq + i] = m${e} + log2(lt); }
    }
  }`,
)}
}
`;
}

// ---------------------------------------------------------------------------------------------
// backward: dK, dV and column sums of dS

export function foxBwdKVWGSL(spec: FoxKernelSpec): string {
  const { D, gated, acp, tiles } = spec;
  const dyn = spec.dynamic === true;
  const { bq, bk, tm, tn } = tiles;
  const nc = bq / tn;
  const { fg, guard } = groups(spec, nc);
  const nt = (bk / tm) * nc;
  const qi = (t: string) => `min(${t}, P.Tq - 1u)`;
  const next = tiles.pf
    ? joinPrefetch([
        prefetchTile(spec, bq, nt, 'P.Tq', true, [
          { v: 'qr', dst: 'Qs', ld: 'ldQ' },
          { v: 'dor', dst: 'dOs', ld: 'ldDO' },
        ]),
        prefetchRows(bq, nt, [
          { v: 'lsr', dst: 'lseQ', read: (t) => `lse2[bh * P.Tq + ${qi(t)} + P.lse2_offset]` },
          { v: 'dlr', dst: 'dltQ', read: (t) => `delta[(b * P.Tq + ${qi(t)}) * P.H + h + P.delta_offset]` },
          { v: 'lqr', dst: 'lamQ', read: (t) => `lamAt(b, ${qi(t)} + off, h)` },
        ]),
      ])
    : null;
  return `${header(spec, bk, bq)}
const BQ = ${bq}u;
const BK = ${bk}u;
var<workgroup> Ks: array<vec4<f32>, ${bk * dv(D)}>;
var<workgroup> Vs: array<vec4<f32>, ${bk * dv(D)}>;
var<workgroup> Qs: array<vec4<f32>, ${bq * (dv(D) + 1)}>;
var<workgroup> dOs: array<vec4<f32>, ${bq * (dv(D) + 1)}>;
var<workgroup> Ps: array<vec4<f32>, ${(bq * bk) / 4}>;
var<workgroup> dSs: array<vec4<f32>, ${(bq * bk) / 4}>;
var<workgroup> red: array<f32, ${bk * nc}>;
var<workgroup> lseQ: array<f32, ${bq}>;
var<workgroup> dltQ: array<f32, ${bq}>;
var<workgroup> lamQ: array<f32, ${bq}>;
${rowAccessor(spec, 'q', 'P.Tq', 'ldQ', false)}
${rowAccessor(spec, 'k', 'P.Tk', 'ldK', false)}
${rowAccessor(spec, 'v', 'P.Tk', 'ldV', false)}
${rowAccessor(spec, 'dout', 'P.Tq', 'ldDO', false)}
${rowAccessor(spec, 'dk', 'P.Tk', 'stDK', true)}
${rowAccessor(spec, 'dv', 'P.Tk', 'stDV', true)}
${lamFn(gated)}

${entry(spec, (bk / tm) * nc)}
  let j0 = wid.x * BK;
  let off = P.Tk - P.Tq;
  let tr = lin / NC;
  let tc = lin % NC;
  let jb = j0 + tr * TM;
${loadTile('  ', 'BK', 'j', 'j0', 'P.Tk', false, [
  { v: 'kv', dst: 'Ks', ld: 'ldK', scaled: true },
  { v: 'vv', dst: 'Vs', ld: 'ldV' },
])}
${lines(tm, (e) => `  let lkRaw${e} = lamAt(b, min(jb + ${e}u, P.Tk - 1u), h);\n  var cs${e} = 0.0;`)}
  // query tiles that see this key tile: causal start, end from ACP (last 64-query tile keeping it)
  var qt0 = 0u;
  if (j0 > off) { qt0 = (j0 - off) / BQ; }
  var qEnd = P.Tq;
${acp ? '  qEnd = min(qEnd, u32(lastq[bh * P.nkb64 + j0 / 64u + P.lastq_offset] + 1) * 64u);' : ''}
${spec.window ? `${WINDOW_END('min(j0 + BK, P.Tk) - 1u')}\n` : ''}  let qt1 = (qEnd + BQ - 1u) / BQ;
${range(tm)
  .flatMap((e) => range(fg).map((f) => `  var dk${e}_${f} = vec4<f32>(0.0);\n  var dv${e}_${f} = vec4<f32>(0.0);`))
  .join('\n')}
${next ? `${next.decl}${next.load('qt0 * BQ')}` : ''}  for (var qt = qt0; qt < qt1; qt++) {
    let i0 = qt * BQ;
    workgroupBarrier();
${
  next
    ? `${next.store}    workgroupBarrier();
    if (qt + 1u < qt1) {
${next.load('i0 + BQ')}    }`
    : `${loadTile('    ', 'BQ', 'i', 'i0', 'P.Tq', true, [
        { v: 'qv', dst: 'Qs', ld: 'ldQ' },
        { v: 'dov', dst: 'dOs', ld: 'ldDO' },
      ])}
    for (var x = lid; x < BQ; x += NT) {
      let i = min(i0 + x, P.Tq - 1u);
      lseQ[x] = lse2[bh * P.Tq + i + P.lse2_offset];
      dltQ[x] = delta[(b * P.Tq + i) * P.H + h + P.delta_offset];
      lamQ[x] = lamAt(b, i + off, h);
    }
    workgroupBarrier();`
}
    let lamRef = lamAt(b, (i0 / 64u) * 64u + off, h);
${lines(tm, (e) => `    let lk${e} = (lkRaw${e} - lamRef) * LOG2E;`)}
${scoreTile('s', 'Ks', 'Qs', nc, tm, tn)}
${scoreTile('dp', 'Vs', 'dOs', nc, tm, tn)}
${lines(
  tn,
  (f) => `    let r${f} = tc + ${nc * f}u;
    let ic${f} = i0 + r${f};
    let lq${f} = (lamQ[r${f}] - lamRef) * LOG2E - lseQ[r${f}];
    let dl${f} = dltQ[r${f}];`,
)}
${range(tm)
  .flatMap((e) =>
    range(tn).map(
      (
        f,
      ) => `    let p${e}_${f} = select(0.0, exp2(s${e}_${f} + lq${f} - lk${e}), ic${f} < P.Tq && jb + ${e}u <= ic${f} + off && jb + ${e}u < P.Tk${inWindow(spec.window, `jb + ${e}u`, `ic${f} + off`)});
    let ds${e}_${f} = p${e}_${f} * (dp${e}_${f} - dl${f});`,
    ),
  )
  .join('\n')}
${lines(
  tm,
  (e) =>
    `    cs${e} += ${range(tn)
      .map((f) => `ds${e}_${f}`)
      .join(' + ')};`,
)}
${stageTransposed('Ps', 'p', 'BK', nc, tm, tn)}
${stageTransposed('dSs', 'ds', 'BK', nc, tm, tn)}
${accumulateTile(
  'r',
  dyn ? 'P.loopBQ' : 'BQ',
  'BK',
  [
    { w: 'pv', staged: 'Ps', x: 'dov', src: 'dOs', acc: 'dv' },
    { w: 'sv', staged: 'dSs', x: 'qv', src: 'Qs', acc: 'dk' },
  ],
  { fg, guard },
  nc,
  tm,
)}
  }
${lines(
  tm,
  (e) => `  if (jb + ${e}u < P.Tk) {
${lines(fg, (f) => `    if (${guard(f)}) {\n      stDK(b, jb + ${e}u, h, tc + ${nc * f}u, dk${e}_${f} * P.scale);\n      stDV(b, jb + ${e}u, h, tc + ${nc * f}u, dv${e}_${f});\n    }`)}
  }`,
)}
${gated ? storeRowSums(tm, 'cs', 'BK', 'j', 'j0', 'P.Tk', 'colsum') : ''}
}
`;
}

// ---------------------------------------------------------------------------------------------
// backward: dQ and row sums of dS

export function foxBwdQWGSL(spec: FoxKernelSpec): string {
  const { D, gated, acp, tiles } = spec;
  const dyn = spec.dynamic === true;
  const { bq, bk, tm, tn } = tiles;
  const nc = bk / tn;
  const { fg, guard } = groups(spec, nc);
  const nt = (bq / tm) * nc;
  const next = tiles.pf
    ? joinPrefetch([
        prefetchTile(spec, bk, nt, 'P.Tk', true, [
          { v: 'kr', dst: 'Ks', ld: 'ldK' },
          { v: 'vr', dst: 'Vs', ld: 'ldV' },
        ]),
        prefetchRows(bk, nt, [
          { v: 'lr', dst: 'lamK', read: (t) => `lamAt(b, min(${t}, P.Tk - 1u), h)`, store: (v) => `(${v} - lamRef) * LOG2E` },
        ]),
      ])
    : null;
  return `${header(spec, bq, bk)}
const BQ = ${bq}u;
const BK = ${bk}u;
var<workgroup> Qs: array<vec4<f32>, ${bq * dv(D)}>;
var<workgroup> dOs: array<vec4<f32>, ${bq * dv(D)}>;
var<workgroup> Ks: array<vec4<f32>, ${bk * (dv(D) + 1)}>;
var<workgroup> Vs: array<vec4<f32>, ${bk * (dv(D) + 1)}>;
var<workgroup> dSt: array<vec4<f32>, ${(bk * bq) / 4}>;
var<workgroup> red: array<f32, ${bq * nc}>;
var<workgroup> lamK: array<f32, ${bk}>;
${rowAccessor(spec, 'q', 'P.Tq', 'ldQ', false)}
${rowAccessor(spec, 'k', 'P.Tk', 'ldK', false)}
${rowAccessor(spec, 'v', 'P.Tk', 'ldV', false)}
${rowAccessor(spec, 'dout', 'P.Tq', 'ldDO', false)}
${rowAccessor(spec, 'dq', 'P.Tq', 'stDQ', true)}
${lamFn(gated)}

${entry(spec, (bq / tm) * nc)}
${QUERY_TILE}
${loadTile('  ', 'BQ', 'i', 'i0', 'P.Tq', false, [
  { v: 'qv', dst: 'Qs', ld: 'ldQ', scaled: true },
  { v: 'dov', dst: 'dOs', ld: 'ldDO' },
])}
  let lamRef = lamAt(b, (i0 / 64u) * 64u + off, h);
${lines(
  tm,
  (e) => `  let ic${e} = min(ib + ${e}u, P.Tq - 1u);
  let lq${e} = (lamAt(b, ic${e} + off, h) - lamRef) * LOG2E - lse2[bh * P.Tq + ic${e} + P.lse2_offset];
  let dl${e} = delta[(b * P.Tq + ic${e}) * P.H + h + P.delta_offset];
  var rs${e} = 0.0;`,
)}
${keyTileRange(acp, spec.window === true)}
${range(tm)
  .flatMap((e) => range(fg).map((f) => `  var dq${e}_${f} = vec4<f32>(0.0);`))
  .join('\n')}
${next ? `${next.decl}${next.load('kt0 * BK')}` : ''}  for (var kt = kt0; kt <= kt1; kt++) {
    let j0 = kt * BK;
    workgroupBarrier();
${
  next
    ? `${next.store}    workgroupBarrier();
    if (kt < kt1) {
${next.load('j0 + BK')}    }`
    : `${loadTile('    ', 'BK', 'j', 'j0', 'P.Tk', true, [
        { v: 'kv', dst: 'Ks', ld: 'ldK' },
        { v: 'vv', dst: 'Vs', ld: 'ldV' },
      ])}
${LAMBDA_KEYS}
    workgroupBarrier();`
}
${scoreTile('s', 'Qs', 'Ks', nc, tm, tn)}
${scoreTile('dp', 'dOs', 'Vs', nc, tm, tn)}
${lines(tn, (f) => `    let lk${f} = lamK[tc + ${nc * f}u];\n    let jc${f} = j0 + tc + ${nc * f}u;`)}
${range(tm)
  .flatMap((e) =>
    range(tn).map(
      (f) =>
        `    let ds${e}_${f} = select(0.0, exp2(s${e}_${f} + lq${e} - lk${f}) * (dp${e}_${f} - dl${e}), ib + ${e}u < P.Tq && jc${f} <= ib + ${e}u + off${inWindow(spec.window, `jc${f}`, `ib + ${e}u + off`)});`,
    ),
  )
  .join('\n')}
${lines(
  tm,
  (e) =>
    `    rs${e} += ${range(tn)
      .map((f) => `ds${e}_${f}`)
      .join(' + ')};`,
)}
${stageTransposed('dSt', 'ds', 'BQ', nc, tm, tn)}
${accumulateTile('j', dyn ? 'P.loopBK' : 'BK', 'BQ', [{ w: 'sv', staged: 'dSt', x: 'kv', src: 'Ks', acc: 'dq' }], { fg, guard }, nc, tm)}
  }
${lines(
  tm,
  (e) => `  if (ib + ${e}u < P.Tq) {
${lines(fg, (f) => `    if (${guard(f)}) { stDQ(b, ib + ${e}u, h, tc + ${nc * f}u, dq${e}_${f} * P.scale); }`)}
  }`,
)}
${gated ? storeRowSums(tm, 'rs', 'BQ', 'i', 'i0', 'P.Tq', 'rowsum') : ''}
}
`;
}
