import { rowAccessor } from '../wgsl/rows.js';
import { lines, range } from '../wgsl/util.js';
import { F16_SCALE_WGSL, f16HeadDim, foxMaxAbsWGSL } from './wgsl-f16.js';
import { lamFn } from './wgsl-tiled.js';

/**
 * The backward kernels of forgetting attention at precision 'high': every product on the tensor
 * cores through WGSL subgroup matrices (f16 × f16 → f32 at 16×16×16), P, dS, the masks and the Λ
 * terms in f32 on the lanes. Same math as the f32 kernels of `wgsl-tiled.ts`: P = exp2(scale·log2 e·
 * q·k + (Λ_i − Λ_j)·log2 e − lse2_i) from the forward's base-2 log-normaliser, dS = P∘(dP − δ),
 * dV = Pᵀ·dO, dK = scale·dSᵀ·Q, dQ = scale·dS·K, colsum_j = Σ_i dS_ij, rowsum_i = Σ_j dS_ij.
 *
 * Two kernels of one scheme: a workgroup owns R = 32·`sg` rows (keys for dK/dV, queries for dQ;
 * one subgroup 32 of them, one lane one row), holds their two operands (K and V, or Q and dO) as
 * f16 in workgroup memory, and loops over tiles of C columns (queries, or keys) that see them,
 * causal and ACP. Per tile:
 * 1. the tile's two operands (Q and dO, or K and V) are staged as f16, with the per-column f32
 *    terms (Λ, lse2, δ);
 * 2. S = rows·colsᵀ (K·Qᵀ or Q·Kᵀ; the staged tile as col_major right matrices of its row-major
 *    staging) goes through an f32 scratch to the lanes, which compute P with the masks and keep
 *    it in registers (dK/dV: and write it as f16 for dV += Pᵀ·dO, on the tensor cores);
 * 3. dP = (V·dOᵀ or dO·Vᵀ) through the scratch; the lanes form dS = P(dP − δ), add it to the
 *    row's column/row sum and write it as f16 (scaled, see below);
 * 4. dK += dSᵀ·Q, or dQ += dS·K (row_major right matrices of the same staging).
 * The dK/dV kernel's ACP bound is per subgroup (its 32 keys lie in one 64-key block: the last
 * 64-query block keeping it, `lastq`), the dQ kernel's too (`first`), so both prune exactly the
 * pairs the f32 kernels prune.
 *
 * Range rule. q, k, v and dO are scaled by powers of two 2^e from a device max-abs pass
 * (`foxMaxAbsBwdWGSL`, the forward's `fox_scale_exp`: max|x|·2^e in [2^14, 2^15)) before their
 * f16 conversion, so no finite f32 operand becomes ±Inf. dP and δ are then in the scaled units
 * 2^(e_v + e_dO) (δ scaled on the lanes with ldexp); dS in those units is bounded by
 * |dP| + |δ| ≤ 2·D·2^30 (|v_j·dO_i| ≤ D·max|v|·max|dO|, and o_i is a convex combination of the v_j),
 * so dS is multiplied by 2^−c, c = 16 + ⌈log2 D⌉, before its f16 conversion: |dS| < 2^15, never
 * Inf (the conversion is clamped to ±65504 besides). P ≤ 1 is stored as is. Entries below f16's
 * normal range (|P| < 2^−14, |dS·2^−c| < 2^−14) keep absolute precision 2^−24 only, small against
 * the largest ones (the checks are norm-wise). The results are scaled back by exact powers of two
 * (`fox_ldexp`, in steps, so that no intermediate leaves f32's range before the result does).
 *
 * `emulate` writes the same kernels with the matrix operations in plain WGSL (each lane computes
 * its 8 elements of a result matrix from the workgroup arrays the matrices would be loaded from),
 * for adapters without subgroup matrices (lavapipe in CI); slow, for tests.
 */
export interface FoxF16BwdConfig {
  /** dK/dV kernel: subgroups (32 keys each) per workgroup: 1, 2 or 4. */
  kvSg: number;
  /** dK/dV kernel: queries per tile: 16 or 32. */
  bq: number;
  /** dQ kernel: subgroups (32 queries each) per workgroup: 1, 2 or 4. */
  qSg: number;
  /** dQ kernel: keys per tile: 16 or 32. */
  bk: number;
  /** Plain-WGSL subgroup matrices (see above). */
  emulate?: boolean;
  /**
   * Tuning variants (hardware experiments; the defaults are the first configuration):
   * `hold`: the resident row operands are loaded into left matrices once, before the tile loop,
   * instead of from workgroup memory in every tile;
   */
  hold?: boolean;
  /** `pkeep`: where P waits for dS = P∘(dP − δ): in registers ('regs', default) or as f16 in the P/dS array ('shared'); */
  pkeep?: 'regs' | 'shared';
  /** `split`: dK and dV in two kernels (each recomputes S; 10 result matrices per subgroup instead of 18). */
  split?: boolean;
  /**
   * Timing experiments on hardware only (the results are WRONG): pieces of the tile loop left out,
   * of 'stage' (the tile's operands), 'terms' (its per-column terms), 's' (S), 'dp' (dP), 'lanes'
   * (P and dS on the lanes), 'acc' (the accumulations), 'bar' (the loop's barriers).
   */
  ablate?: string[];
  /** The next tile's operands and column terms read into registers while the current one computes. */
  prefetch?: boolean;
}

export interface FoxF16BwdSpec {
  D: number;
  gated: boolean;
  acp: boolean;
}

type Kind = 'dkv' | 'dq';
/** A kernel: the dK/dV kernel whole, or (split) its dK or dV half, or the dQ kernel. */
export type F16BwdKernel = Kind | 'dk' | 'dv';

function geometry(kind: F16BwdKernel, D: number, c: FoxF16BwdConfig) {
  const sg = kind === 'dq' ? c.qSg : c.kvSg;
  const R = 32 * sg;
  const C = kind === 'dq' ? c.bk : c.bq;
  const HD = D + 8; // operand rows (halves; 16-byte padding against bank conflicts)
  const HH = C + 8; // P / dS rows (halves)
  const SFS = C + 4; // f32 scratch rows
  return { sg, R, C, HD, HH, SFS, KD: D / 16, NC: C / 16, ND: D / 16 };
}

/** Workgroup-memory bytes of a backward kernel. */
export function f16BwdSmemBytes(kind: F16BwdKernel, D: number, c: FoxF16BwdConfig): number {
  const g = geometry(kind, D, c);
  return 2 * g.R * g.HD * 2 + 2 * g.C * g.HD * 2 + g.R * g.HH * 2 + g.R * g.SFS * 4 + (kind === 'dq' ? 1 : 2) * g.C * 4;
}

/** Whether both kernels take head dim D with this configuration within `maxShared` bytes. */
export function f16BwdFit(D: number, c: FoxF16BwdConfig, maxShared: number): boolean {
  return (
    f16HeadDim(D) &&
    [1, 2, 4].includes(c.kvSg) &&
    [1, 2, 4].includes(c.qSg) &&
    [16, 32].includes(c.bq) &&
    [16, 32].includes(c.bk) &&
    (c.pkeep === undefined || c.pkeep === 'regs' || c.pkeep === 'shared') &&
    f16BwdSmemBytes('dkv', D, c) <= maxShared &&
    f16BwdSmemBytes('dq', D, c) <= maxShared
  );
}

/** Rows per workgroup of a backward kernel. */
export const f16BwdRows = (kind: F16BwdKernel, c: FoxF16BwdConfig) => 32 * (kind === 'dq' ? c.qSg : c.kvSg);

/** The exponent c of dS's f16 scaling (see the file comment). */
export const f16DsShift = (D: number) => 16 + Math.ceil(Math.log2(D));

/** x·2^e in steps of at most 2^±120, monotone, so no intermediate over- or underflows before the result does. */
export const F16_LDEXP_WGSL = `fn fox_ldexp(x: f32, e: i32) -> f32 {
  var y = x;
  var r = e;
  for (var i = 0; i < 4; i++) {
    let s = clamp(r, -120, 120);
    y = ldexp(y, s);
    r -= s;
  }
  return y;
}
fn fox_ldexp4(x: vec4<f32>, e: i32) -> vec4<f32> {
  var y = x;
  var r = e;
  for (var i = 0; i < 4; i++) {
    let s = clamp(r, -120, 120);
    y = ldexp(y, vec4<i32>(s));
    r -= s;
  }
  return y;
}`;

/** The max-abs pre-pass of the backward: `stats[0..3]` = bits of max|q|, max|k|, max|v|, max|dO|. */
export const foxMaxAbsBwdWGSL = () =>
  foxMaxAbsWGSL([
    ['q', 'n4q'],
    ['k', 'n4k'],
    ['v', 'n4k'],
    ['dout', 'n4q'],
  ]);

/** Matrix operations, on the tensor cores or emulated. Left matrices are row-major. */
interface Ops {
  /** Declarations: the two left matrices and the right one of the products, the results, and `held` left matrices. */
  decls(results: string[], held: string[]): string;
  left(name: string, arr: string, off: string, stride: number): string;
  right(name: string, arr: string, off: string, stride: number, col: boolean): string;
  zero(acc: string): string;
  mma(acc: string, l: string, r: string): string;
  /** The result matrix into `Sf` (row-major) at `off`, row stride `stride`. */
  store(acc: string, off: string, stride: number): string;
  /** Helper functions (emulation). */
  helpers(): string;
}

const T = {
  left: 'subgroup_matrix_left<f16, 16, 16>',
  right: 'subgroup_matrix_right<f16, 16, 16>',
  result: 'subgroup_matrix_result<f32, 16, 16>',
};

function realOps(): Ops {
  return {
    decls: (results, held) =>
      [
        `  var la0 = ${T.left}();`,
        `  var la1 = ${T.left}();`,
        `  var rb = ${T.right}();`,
        ...held.map((n) => `  var ${n} = ${T.left}();`),
        ...results.map((n) => `  var ${n} = ${T.result}();`),
      ].join('\n'),
    left: (n, arr, off, stride) => `    ${n} = subgroupMatrixLoad<${T.left}, row_major>(&${arr}, ${off}, ${stride}u);`,
    right: (n, arr, off, stride, col) =>
      `    ${n} = subgroupMatrixLoad<${T.right}, ${col ? 'col_major' : 'row_major'}>(&${arr}, ${off}, ${stride}u);`,
    zero: (acc) => `    ${acc} = ${T.result}();`,
    mma: (acc, l, r) => `    ${acc} = subgroupMatrixMultiplyAccumulate(${l}, ${r}, ${acc});`,
    store: (acc, off, stride) => `    subgroupMatrixStore<row_major>(&Sf, ${off}, ${acc}, ${stride}u);`,
    helpers: () => '',
  };
}

/**
 * Emulated: a result matrix is `array<f32, 8>` per lane (element e = lane + 32·t at row e / 16,
 * column e % 16); loads only record where the matrix lies, and each product reads its operands
 * there (the kernels write no operand between a load and its product). Trip counts the software
 * compiler cannot see (`lane >> 8u` = 0) keep it from unrolling the 16×16 loops.
 */
function emuOps(): Ops {
  const at = new Map<string, { arr: string; off: string; stride: number; col: boolean }>();
  const fns = new Map<string, string>();
  return {
    decls: (results) => results.map((n) => `  var ${n}: array<f32, 8>;`).join('\n'),
    left: (n, arr, off, stride) => {
      at.set(n, { arr, off, stride, col: false });
      return '';
    },
    right: (n, arr, off, stride, col) => {
      at.set(n, { arr, off, stride, col });
      return '';
    },
    zero: (acc) => `    ${acc} = array<f32, 8>();`,
    mma: (acc, l, r) => {
      const L = at.get(l);
      const Rm = at.get(r);
      if (!L || !Rm) throw new Error(`emulated product of unloaded matrices ${l}, ${r}`);
      const name = `em_mma_${L.arr}_${Rm.arr}${Rm.col ? 'c' : 'r'}`;
      const rIdx = Rm.col ? 'ro + c * rs + kk' : 'ro + kk * rs + c';
      fns.set(
        name,
        `fn ${name}(acc: ptr<function, array<f32, 8>>, lo: u32, ls: u32, ro: u32, rs: u32, lane: u32) {
  let n16 = 16u + (lane >> 8u);
  for (var t = 0u; t < 8u + (lane >> 8u); t++) {
    let e = lane + 32u * t;
    let r = e / 16u;
    let c = e % 16u;
    var x = (*acc)[t];
    for (var kk = 0u; kk < n16; kk++) { x += f32(${L.arr}[lo + r * ls + kk]) * f32(${Rm.arr}[${rIdx}]); }
    (*acc)[t] = x;
  }
}
`,
      );
      return `    ${name}(&${acc}, ${L.off}, ${L.stride}u, ${Rm.off}, ${Rm.stride}u, lane);`;
    },
    store: (acc, off, stride) => `    em_store(&${acc}, ${off}, ${stride}u, lane);`,
    helpers: () => `fn em_store(m: ptr<function, array<f32, 8>>, off: u32, stride: u32, lane: u32) {
  for (var t = 0u; t < 8u + (lane >> 8u); t++) { let e = lane + 32u * t; Sf[off + (e / 16u) * stride + e % 16u] = (*m)[t]; }
}
${[...fns.values()].join('')}`,
  };
}

/**
 * A backward kernel (see the file comment). dK/dV: bindings q, k, v, dout (vec4 rows), lse2,
 * delta, stats, lam (gated), lastq (ACP); outputs dk, dv (vec4 rows), colsum (gated); grid
 * [⌈Tk / R⌉, B·H]. dQ: the same inputs with first (ACP) for lastq; outputs dq, rowsum (gated);
 * grid [⌈Tq / R⌉, B·H].
 */
export function foxBwdF16WGSL(kind: F16BwdKernel, spec: FoxF16BwdSpec, c: FoxF16BwdConfig): string {
  const { D, gated, acp } = spec;
  const g = geometry(kind, D, c);
  const { R, C, HD, HH, SFS, KD, NC, ND } = g;
  const emu = c.emulate === true;
  const M = emu ? emuOps() : realOps();
  const kv = kind !== 'dq';
  // what the kernel accumulates: dK (or dQ) with dS, dV with P
  const doA = kind !== 'dv';
  const doB = kind === 'dkv' || kind === 'dv';
  const hold = c.hold === true;
  const pShared = c.pkeep === 'shared';
  const threads = R;
  const DV = D / 4;
  const shift = f16DsShift(D);
  // rows (resident) and columns (streamed) of the kernel: their operands and scale factors
  const rowA = kv ? { ld: 'ldK', s: 'sk', T: 'P.Tk' } : { ld: 'ldQ', s: 'sq', T: 'P.Tq' };
  const rowB = kv ? { ld: 'ldV', s: 'sv', T: 'P.Tk' } : { ld: 'ldDO', s: 'sd', T: 'P.Tq' };
  const colA = kv ? { ld: 'ldQ', s: 'sq', T: 'P.Tq' } : { ld: 'ldK', s: 'sk', T: 'P.Tk' };
  const colB = kv ? { ld: 'ldDO', s: 'sd', T: 'P.Tq' } : { ld: 'ldV', s: 'sv', T: 'P.Tk' };
  const sNames = range(2).flatMap((i) => range(NC).map((n) => `s${i}_${n}`));
  const aNames = doA ? range(2).flatMap((i) => range(ND).map((j) => `da${i}_${j}`)) : []; // dK or dQ
  const bNames = doB ? range(2).flatMap((i) => range(ND).map((j) => `db${i}_${j}`)) : []; // dV
  // hold: the resident operands' left matrices, loaded once (Ra: K or Q; Rb: V or dO)
  const heldOf = (res: string, i: number, kd: number) => `h${res}${i}_${kd}`;
  const heldNames = (res: string) => range(2).flatMap((i) => range(KD).map((kd) => heldOf(res, i, kd)));
  const residentRows = doA ? ['Ra', 'Rb'] : ['Ra'];
  const loadHeld = hold
    ? [
        '  workgroupBarrier();',
        ...residentRows.flatMap((res) =>
          range(2).flatMap((i) =>
            range(KD).map((kd) => M.left(heldOf(res, i, kd), res, `${(16 * i) * HD + 16 * kd}u + sg * ${32 * HD}u`, HD)),
          ),
        ),
      ]
        .filter((x) => x)
        .join('\n')
    : '';
  const stage = (dst: string, src: { ld: string; s: string; T: string }, origin: string, rows: number) =>
    `  for (var x = lid; x < ${rows * DV}u; x += ${threads}u) {
    let r = x / ${DV}u;
    let gg = x % ${DV}u;
    let t = ${origin} + r;
    var val = vec4<f32>(0.0);
    if (t < ${src.T}) { val = ${src.ld}(b, t, h, gg) * ${src.s}; }
    let hv = vec4<f16>(val);
${range(4)
  .map((u) => `    ${dst}[r * ${HD}u + gg * 4u + ${u}u] = hv[${u}];`)
  .join('\n')}
  }`;
  // resident·streamedᵀ over D into s{i}_{n}, then to the scratch
  const product = (res: string, str: string) =>
    [
      ...sNames.map((n) => M.zero(n)),
      ...range(KD).flatMap((kd) => [
        ...(hold ? [] : range(2).map((i) => M.left(`la${i}`, res, `${(16 * i) * HD + 16 * kd}u + sg * ${32 * HD}u`, HD))),
        ...range(NC).flatMap((n) => [
          M.right('rb', str, `${16 * n * HD + 16 * kd}u`, HD, true),
          ...range(2).map((i) => M.mma(`s${i}_${n}`, hold ? heldOf(res, i, kd) : `la${i}`, 'rb')),
        ]),
      ]),
      ...range(2).flatMap((i) => range(NC).map((n) => M.store(`s${i}_${n}`, `sfb + ${16 * i * SFS + 16 * n}u`, SFS))),
    ]
      .filter((x) => x)
      .join('\n');
  // acc{i}_{j} += H(rows i, tile columns)·str (row-major, C × D)
  const accumulate = (acc: string, str: string) =>
    range(NC)
      .flatMap((n) => [
        ...range(2).map((i) => M.left(`la${i}`, 'Hs', `hb + ${16 * i * HH + 16 * n}u`, HH)),
        ...range(ND).flatMap((j) => [
          M.right('rb', str, `${16 * n * HD + 16 * j}u`, HD, false),
          ...range(2).map((i) => M.mma(`${acc}${i}_${j}`, `la${i}`, 'rb')),
        ]),
      ])
      .filter((x) => x)
      .join('\n');
  // the lane's row of the scratch, columns rotated by lane group (distinct banks). Per column
  // terms: dK/dV: query i = i0 + c (lqC = (Λ_i − ref)·log2 e − lse2_i, dlC = δ_i scaled); dQ: key
  // j = j0 + c (lkC = (Λ_j − ref)·log2 e). `x` is the column (a WGSL expression).
  const mask = (x: string) =>
    kv ? `rowOk && i0 + ${x} < qEndSg && row <= i0 + ${x} + off` : `rowOk && j0 + ${x} <= row + off${acp ? ` && j0 + ${x} >= jf` : ''}`;
  const pArg = (x: string) => (kv ? `Sf[sr + ${x}] * cS + lqC[${x}] - lk` : `Sf[sr + ${x}] * cS + lq - lkC[${x}]`);
  const dl = (x: string) => (kv ? `dlC[${x}]` : 'dl');
  const pOf = (x: string) => `select(0.0, exp2(${pArg(x)}), ${mask(x)})`;
  const dsOf = (p: string, x: string) => `${p} * (Sf[sr + ${x}] - ${dl(x)})`;
  const dsH = (d: string) => `f16(clamp(${d} * DSC, -65504.0, 65504.0))`;
  // P as f16 in Hs: for dV += Pᵀ·dO, or to wait there for dS (pkeep 'shared', each block then
  // with its own column indices, so that nothing but the sums lives across the barriers)
  const writeP = doB || pShared;
  const cols = lines(C, (cc) => `    let c${cc} = (${cc}u + rot) & ${C - 1}u;`);
  const [open, close] = pShared ? ['    {\n', '\n    }'] : ['', ''];
  // hardware: unrolled, P in registers (or Hs); emulated: loops over a private array (the software
  // compiler's time grows with the values live across barriers)
  const pLanes = emu
    ? `    for (var cc = 0u; cc < ${C}u + (lane >> 8u); cc++) {
      let cx = (cc + rot) & ${C - 1}u;
      let p = ${pOf('cx')};${pShared ? '' : '\n      pr[cc] = p;'}${writeP ? '\n      Hs[hr + cx] = f16(p);' : ''}
    }`
    : `${open}${cols}
${lines(C, (cc) => `    let p${cc} = ${pOf(`c${cc}`)};`)}
${writeP ? lines(C, (cc) => `    Hs[hr + c${cc}] = f16(p${cc});`) : ''}${close}`;
  const dsLanes = emu
    ? `    for (var cc = 0u; cc < ${C}u + (lane >> 8u); cc++) {
      let cx = (cc + rot) & ${C - 1}u;
      let d = ${dsOf(pShared ? 'f32(Hs[hr + cx])' : 'pr[cc]', 'cx')};
      rsum += d;
      Hs[hr + cx] = ${dsH('d')};
    }`
    : `${open}${pShared ? cols : ''}
${lines(C, (cc) => `    let ds${cc} = ${dsOf(pShared ? `f32(Hs[hr + c${cc}])` : `p${cc}`, `c${cc}`)};`)}
    rsum += ${range(C)
      .map((cc) => `ds${cc}`)
      .join(' + ')};
${lines(C, (cc) => `    Hs[hr + c${cc}] = ${dsH(`ds${cc}`)};`)}${close}`;
  // results through the scratch, one 16-column block at a time
  const epilogue = (acc: string, st: string, factor: { mul: string; e: string }) =>
    range(ND)
      .map((j) =>
        [
          '  workgroupBarrier();',
          ...range(2).map((i) => M.store(`${acc}${i}_${j}`, `sfb + ${16 * i * SFS}u`, SFS)),
          '  workgroupBarrier();',
          `  if (rowOk) {
${lines(4, (u) => `    ${st}(b, row, h, ${4 * j + u}u, fox_ldexp4(vec4<f32>(Sf[sr + ${4 * u}u], Sf[sr + ${4 * u + 1}u], Sf[sr + ${4 * u + 2}u], Sf[sr + ${4 * u + 3}u]) * ${factor.mul}, ${factor.e}));`)}
  }`,
        ].join('\n'),
      )
      .join('\n');
  const header = emu
    ? 'enable f16;\n'
    : 'enable f16;\nenable subgroups;\nenable chromium_experimental_subgroup_matrix;\ndiagnostic(off, subgroup_uniformity);\n';
  const builtins = emu ? '' : ', @builtin(subgroup_id) sgid: u32, @builtin(subgroup_invocation_id) sgl: u32';
  const colTerms = kv
    ? `    for (var x = lid; x < ${C}u; x += ${threads}u) {
      let i = min(i0 + x, P.Tq - 1u);
      lqC[x] = (lamAt(b, i + off, h) - lref) * LOG2E - lse2[bh * P.Tq + i + P.lse2_offset];
      dlC[x] = fox_ldexp(fox_ldexp(delta[(b * P.Tq + i) * P.H + h + P.delta_offset], min(ev, ed)), max(ev, ed));
    }`
    : `    for (var x = lid; x < ${C}u; x += ${threads}u) { lkC[x] = (lamAt(b, min(j0 + x, P.Tk - 1u), h) - lref) * LOG2E; }`;
  // tile ranges
  const range_ = kv
    ? `  let j0w = wid.x * ${R}u;
  let row = j0w + sg * 32u + lane;
  let rowOk = row < P.Tk;
  let lamRow = lamAt(b, min(row, P.Tk - 1u), h);
  var qt0 = 0u;
  if (j0w > off) { qt0 = (j0w - off) / ${C}u; }
  var qEnd = P.Tq;
  var qEndSg = P.Tq;
${
  acp
    ? `  let kb0 = bh * P.nkb64 + P.lastq_offset;
  qEnd = min(qEnd, u32(lastq[kb0 + min((j0w + ${R - 1}u) / 64u, P.nkb64 - 1u)] + 1) * 64u);
  qEndSg = min(qEndSg, u32(lastq[kb0 + min((j0w + sg * 32u) / 64u, P.nkb64 - 1u)] + 1) * 64u);`
    : ''
}
  let qt1 = (qEnd + ${C - 1}u) / ${C}u;`
    : `  let nqt = (P.Tq + ${R - 1}u) / ${R}u;
  let i0w = (nqt - 1u - wid.x) * ${R}u;
  let row = i0w + sg * 32u + lane;
  let rowOk = row < P.Tq;
  let ri = min(row, P.Tq - 1u);
  let lref = lamAt(b, i0w + off, h);
  let lq = (lamAt(b, ri + off, h) - lref) * LOG2E - lse2[bh * P.Tq + ri + P.lse2_offset];
  let dl = fox_ldexp(fox_ldexp(delta[(b * P.Tq + ri) * P.H + h + P.delta_offset], min(ev, ed)), max(ev, ed));
${
  acp
    ? `  let qb = bh * P.nqb64 + P.first_offset;
  let jf = u32(first[qb + min((i0w + sg * 32u) / 64u, P.nqb64 - 1u)]) * 64u;
  let kt0 = (u32(first[qb + i0w / 64u]) * 64u) / ${C}u;`
    : '  let kt0 = 0u;'
}
  let kt1 = (min(i0w + ${R}u, P.Tq) - 1u + off) / ${C}u + 1u;`;
  // prefetch: the next tile's operands (and column terms) are read into registers while the
  // tile computes, and written to workgroup memory at the top of the next iteration
  const pre = c.prefetch === true;
  const units = C * DV;
  const U = Math.ceil(units / threads);
  const partial = (u: number) => units % threads !== 0 && (u + 1) * threads > units;
  const regs = [
    ['Ca', 'pa', colA],
    ['Cb', 'pb', colB],
  ] as const;
  const fetchTile = (origin: string) =>
    [
      ...range(U).flatMap((u) =>
        regs.map(
          ([, reg, src]) =>
            `    { let x = lid + ${u * threads}u; let t = ${origin} + x / ${DV}u; ${reg}${u} = vec4<f32>(0.0); if (${partial(u) ? `x < ${units}u && ` : ''}t < ${src.T}) { ${reg}${u} = ${src.ld}(b, t, h, x % ${DV}u) * ${src.s}; } }`,
        ),
      ),
      kv
        ? `    { let i = min(${origin} + lid, P.Tq - 1u); tl = lamAt(b, i + off, h); tse = lse2[bh * P.Tq + i + P.lse2_offset]; tdl = delta[(b * P.Tq + i) * P.H + h + P.delta_offset]; nref = lamAt(b, min(${origin}, P.Tq - 1u) + off, h); }`
        : `    tl = lamAt(b, min(${origin} + lid, P.Tk - 1u), h);`,
    ].join('\n');
  const putTile = [
    ...range(U).flatMap((u) =>
      regs.map(
        ([dst, reg]) =>
          `    ${partial(u) ? `if (lid + ${u * threads}u < ${units}u) ` : ''}{ let x = lid + ${u * threads}u; let o = (x / ${DV}u) * ${HD}u + (x % ${DV}u) * 4u; let hv = vec4<f16>(${reg}${u}); ${range(
            4,
          )
            .map((k) => `${dst}[o + ${k}u] = hv[${k}];`)
            .join(' ')} }`,
      ),
    ),
    kv
      ? `    if (lid < ${C}u) { lqC[lid] = (tl - lref) * LOG2E - tse; dlC[lid] = fox_ldexp(fox_ldexp(tdl, min(ev, ed)), max(ev, ed)); }`
      : `    if (lid < ${C}u) { lkC[lid] = (tl - lref) * LOG2E; }`,
  ].join('\n');
  const preDecls = pre
    ? `${range(U)
        .flatMap((u) => regs.map(([, reg]) => `  var ${reg}${u}: vec4<f32>;`))
        .join('\n')}
  var tl = 0.0;${kv ? '\n  var tse = 0.0;\n  var tdl = 0.0;\n  var nref = 0.0;' : ''}
${fetchTile(kv ? `qt0 * ${C}u` : `kt0 * ${C}u`)}`
    : '';
  const loopHead = pre
    ? kv
      ? `  for (var qt = qt0; qt < qt1; qt++) {
    let i0 = qt * ${C}u;
    let lref = nref;
    let lk = (lamRow - lref) * LOG2E;
    workgroupBarrier();
@@PUT@@
${fetchTile(`i0 + ${C}u`)}`
      : `  for (var kt = kt0; kt < kt1; kt++) {
    let j0 = kt * ${C}u;
    workgroupBarrier();
@@PUT@@
${fetchTile(`j0 + ${C}u`)}`
    : kv
      ? `  for (var qt = qt0; qt < qt1; qt++) {
    let i0 = qt * ${C}u;
    let lref = lamAt(b, i0 + off, h);
    let lk = (lamRow - lref) * LOG2E;
    workgroupBarrier();
${stage('Ca', colA, 'i0', C).replace(/^/gm, '  ')}
${stage('Cb', colB, 'i0', C).replace(/^/gm, '  ')}`
      : `  for (var kt = kt0; kt < kt1; kt++) {
    let j0 = kt * ${C}u;
    workgroupBarrier();
${stage('Ca', colA, 'j0', C).replace(/^/gm, '  ')}
${stage('Cb', colB, 'j0', C).replace(/^/gm, '  ')}`;
  const origin = kv ? 'j0w' : 'i0w';
  const sumOut = kv ? 'colsum' : 'rowsum';
  const T0 = kv ? 'P.Tk' : 'P.Tq';
  // ablate (timing experiments; wrong results): pieces of the tile loop left out
  const on = (piece: string) => !c.ablate?.includes(piece);
  const bar = on('bar') ? '    workgroupBarrier();' : '';
  const head = pre
    ? loopHead.replace('@@PUT@@', on('stage') ? putTile : '')
    : on('stage')
      ? loopHead
      : loopHead.replace(/\n {4}for \(var x = lid;[\s\S]*$/, '');
  const body = `${head}
${on('terms') && !pre ? colTerms : ''}
${bar}
${on('s') ? product('Ra', 'Ca') : ''}
${bar}
${on('lanes') ? pLanes : ''}
${bar}
${doB && on('acc') ? accumulate('db', 'Cb') : ''}
${
  doA
    ? `${on('dp') ? product('Rb', 'Cb') : ''}
${bar}
${on('lanes') ? dsLanes : ''}
${bar}
${on('acc') ? accumulate('da', 'Ca') : ''}`
    : ''
}
  }`;
  const ioRows = [
    ...(kv && doA ? [rowAccessor({ D }, 'dk', 'P.Tk', 'stDK', true)] : []),
    ...(doB ? [rowAccessor({ D }, 'dv', 'P.Tk', 'stDV', true)] : []),
    ...(kv ? [] : [rowAccessor({ D }, 'dq', 'P.Tq', 'stDQ', true)]),
  ].join('\n');
  const code = `${header}const LOG2E = 1.4426950408889634;
const DSC = ${2 ** -shift};
var<workgroup> Ra: array<f16, ${R * HD}>;
var<workgroup> Rb: array<f16, ${R * HD}>;
var<workgroup> Ca: array<f16, ${C * HD}>;
var<workgroup> Cb: array<f16, ${C * HD}>;
var<workgroup> Hs: array<f16, ${R * HH}>;
var<workgroup> Sf: array<f32, ${R * SFS}>;
${kv ? `var<workgroup> lqC: array<f32, ${C}>;\nvar<workgroup> dlC: array<f32, ${C}>;` : `var<workgroup> lkC: array<f32, ${C}>;`}
${rowAccessor({ D }, 'q', 'P.Tq', 'ldQ', false)}
${rowAccessor({ D }, 'k', 'P.Tk', 'ldK', false)}
${rowAccessor({ D }, 'v', 'P.Tk', 'ldV', false)}
${rowAccessor({ D }, 'dout', 'P.Tq', 'ldDO', false)}
${ioRows}
${lamFn(gated)}
${F16_SCALE_WGSL}
${F16_LDEXP_WGSL}
@@HELPERS@@
@compute @workgroup_size(${threads})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>${builtins}) {
  let sg = ${emu ? 'lid / 32u' : 'sgid'};
  let lane = ${emu ? 'lid % 32u' : 'sgl'};
  let rot = lane / 8u;
  let bh = wid.y;
  let b = bh / P.H;
  let h = bh % P.H;
  let off = P.Tk - P.Tq;
  let eq = fox_scale_exp(stats[P.stats_offset]);
  let ek = fox_scale_exp(stats[P.stats_offset + 1u]);
  let ev = fox_scale_exp(stats[P.stats_offset + 2u]);
  let ed = fox_scale_exp(stats[P.stats_offset + 3u]);
  let sq = exp2(f32(eq));
  let sk = exp2(f32(ek));
  let sv = exp2(f32(ev));
  let sd = exp2(f32(ed));
  let cS = P.scale2 * exp2(f32(-eq - ek));
  let sfb = sg * ${32 * SFS}u;
  let sr = sfb + lane * ${SFS}u;
  let hb = sg * ${32 * HH}u;
  let hr = hb + lane * ${HH}u;
${range_}
${M.decls([...sNames, ...aNames, ...bNames], hold ? residentRows.flatMap(heldNames) : [])}
${[...aNames, ...bNames].map((n) => M.zero(n)).join('\n')}
  var rsum = 0.0;${emu ? `\n  var pr: array<f32, ${C}>;` : ''}
  workgroupBarrier();
${stage('Ra', rowA, origin, R)}
${stage('Rb', rowB, origin, R)}
${loadHeld}
${preDecls}
${body}
${doA ? epilogue('da', kv ? 'stDK' : 'stDQ', { mul: 'P.scale', e: `${shift} - ev - ed - ${kv ? 'eq' : 'ek'}` }) : ''}
${doB ? epilogue('db', 'stDV', { mul: '1.0', e: '-ed' }) : ''}
${gated && doA ? `  if (rowOk) { ${sumOut}[(b * ${T0} + row) * P.H + h] = fox_ldexp(rsum, -ev - ed); }` : ''}
}
`;
  return code.replace('@@HELPERS@@', M.helpers());
}
