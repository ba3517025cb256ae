import { atomicAddF32 } from '../wgsl/atomic.js';
import { shuffleReduce } from '../wgsl/reduce.js';
import { rowAccessor } from '../wgsl/rows.js';
import { comp, dv, lines, range } from '../wgsl/util.js';
import { type FoxKernelSpec, inWindow, lamFn, WINDOW_END, WINDOW_START } from './wgsl-tiled.js';

/**
 * The wide kernels (hardware, head dims D ≤ 128 that are multiples of 4; the default there):
 * forward, dQ and dK/dV on one scheme. A workgroup owns 128 rows (queries; keys in dK/dV) and loops
 * over `bk`-column tiles (keys; queries in dK/dV); each thread keeps `tm`×(bk/8) micro-tiles of the
 * score products and `tm` rows × D/8 columns of each output in registers, so that a vec4 read from
 * workgroup memory feeds 8–16 multiply-adds (the tiled kernels of `wgsl-tiled.ts` reach 4–8: their resident tiles leave too
 * little of the 48 KiB of workgroup memory for larger ones).
 *
 * Per column tile the products run in the "outer" form over chunks staged in one workgroup
 * buffer: score products (S = Q·Kᵀ; also dP = dO·Vᵀ in the backward kernels) over chunks of D
 * (both operands stored transposed, so that a thread reads its rows and columns as vec4), then
 * the second products (P·V; dS·K; P·dO and dS·Q) over 32-column chunks (the weights stored
 * transposed with an XOR swizzle that keeps their stores free of bank conflicts, the column
 * operand as is). The row operand is re-read from L1/L2 for every column tile instead of living
 * in workgroup memory. Thread (tr, tc) owns rows `tr·4 + 4·NR·a + u` (NR = 128/tm row groups),
 * score columns `tc·4 + 32·c + u` and output vec4 groups `tc + 8·c` (u < 4). Row maxima (forward)
 * and row sums of dS (backward, gated) are exchanged across the 8 threads of a row through
 * workgroup memory (or subgroup shuffles, `sg`); the forward's row sums stay per thread until the
 * end. Masked forward scores are −1e30: their weights underflow to 0 once the row has a kept key;
 * before that (ACP rows whose first kept tile comes after the workgroup's first) they are 1, and
 * the rescaling by exp2(−1e30 − m) = 0 at the row's first kept key erases them. ACP bounds apply
 * per 64-row half, so the same pairs are pruned as in the other kernels. A sliding window
 * (`spec.window`) bounds the column tiles like the tiled kernels do (`wgsl-tiled.ts`) and masks
 * the pairs outside it; forward rows whose window starts after the first column tile are the
 * same case as those ACP rows.
 */
export interface FoxWideConfig {
  /** Columns (keys; queries in dK/dV) per tile: 32, 64 or 128. */
  bk: number;
  /** Rows per thread: 8 (128 threads, when not given) or 4 (256 threads). */
  tm?: number;
  /**
   * Software pipelining: each stage's column-side reads (and the second products' chunks) are
   * issued one stage ahead, into registers; the row operand is read when staged (from L1).
   */
  pf?: boolean;
  /**
   * vec4 groups of D staged per score stage: 8 (32 values, when not given) or 4. Smaller chunks
   * mean more stages and barriers; the tests use 4 to reach the multi-chunk code at small D,
   * which keeps lavapipe's compile of the unrolled loops short.
   */
  dch?: number;
  /** Row maxima through subgroup shuffles (needs subgroups, subgroup_id, subgroup size ≥ 8). */
  sg?: boolean;
  /**
   * dK/dV kernel only (bk ≤ 64): it also accumulates dQ = scale·dSᵀ·K per query tile, added to dQ
   * with atomic compare-exchange loops, so the dQ kernel (which recomputes S and dP) is not run.
   * The order of those float additions varies from run to run (results differ in the last bits).
   */
  fuseDq?: boolean;
}

/** Rows (queries; keys in dK/dV) per workgroup. */
export const WIDE_ROWS = 128;
const BQ = WIDE_ROWS;
/** Threads of a workgroup: 8 score columns × 128/tm row groups. */
export const wideThreads = (c: FoxWideConfig) => (BQ / (c.tm ?? 8)) * 8;
/** Columns of a tile staged at a time for the second products (the D chunk is `dch`). */
const CH = 32;
const dchOf = (c: FoxWideConfig) => c.dch ?? 8;

/** Whether the wide kernel takes head dim `D` with this configuration. */
export function wideFit(D: number, c: FoxWideConfig, maxShared: number): boolean {
  return (
    D % 4 === 0 &&
    D <= 128 &&
    [32, 64, 128].includes(c.bk) &&
    [4, 8, undefined].includes(c.tm) &&
    [4, 8, undefined].includes(c.dch) &&
    !(c.fuseDq && c.bk > 64) &&
    wideSmemBytes(D, c) <= maxShared
  );
}

/** vec4 sizes of the staging buffer's parts: Qᵀ and Kᵀ chunks (S phase), Pᵀ and V chunks (P·V phase). */
function parts(D: number, c: FoxWideConfig) {
  const dRows = Math.min(4 * dchOf(c), 4 * dv(D));
  const qt = dRows * (BQ / 4);
  const kt = dRows * (c.bk / 4);
  const pt = CH * (BQ / 4);
  const vc = CH * dv(D);
  // the fused dK/dV kernel also stages a whole dS tile (rows × bk) for its dQ product
  const ds = c.fuseDq ? (BQ * c.bk) / 4 : 0;
  return { dRows, qt, kt, pt, vc, size: Math.max(qt + kt, pt + vc, ds) };
}

/** Workgroup bytes (counts the dK/dV kernel's second per-column array for all three). */
export function wideSmemBytes(D: number, c: FoxWideConfig): number {
  return parts(D, c).size * 16 + (c.sg ? 0 : BQ * 8 * 4) + 2 * c.bk * 4;
}

type Operand = 'ldQ' | 'ldDO' | 'ldK' | 'ldV';

/** One product of the score phase: `acc[row][col] = A[row]·B[col]` over D. */
interface ScoreProduct {
  acc: string;
  /** Row-side operand (accessor) and whether it is pre-scaled by scale·log2 e. */
  a: Operand;
  scaled: boolean;
  /** Column-side operand. */
  b: Operand;
}

/** One product of the second phase: `acc[row] += Σ_col w[row][col]·x[col]` (x: a column-side operand). */
interface SecondProduct {
  w: string;
  x: Operand;
  acc: string;
}

interface WideKind {
  scores: ScoreProduct[];
  seconds: SecondProduct[];
}

// rows are queries in the forward and dQ kernels, keys in the dK/dV kernel
const KINDS: Record<'fwd' | 'dq' | 'dkv', WideKind> = {
  fwd: { scores: [{ acc: 's', a: 'ldQ', scaled: true, b: 'ldK' }], seconds: [{ w: 's', x: 'ldV', acc: 'o' }] },
  dq: {
    scores: [
      { acc: 's', a: 'ldQ', scaled: true, b: 'ldK' },
      { acc: 'dp', a: 'ldDO', scaled: false, b: 'ldV' },
    ],
    seconds: [{ w: 's', x: 'ldK', acc: 'o' }],
  },
  dkv: {
    scores: [
      { acc: 's', a: 'ldK', scaled: true, b: 'ldQ' },
      { acc: 'dp', a: 'ldV', scaled: false, b: 'ldDO' },
    ],
    seconds: [
      { w: 's', x: 'ldDO', acc: 'dv' },
      { w: 'dp', x: 'ldQ', acc: 'dk' },
    ],
  },
};

/** The wide forward kernel: writes o and the base-2 log-normaliser `lse2`. */
export function foxForwardWideWGSL(spec: FoxKernelSpec, c: FoxWideConfig): string {
  return wideKernel(spec, c, 'fwd');
}

/**
 * The wide dQ kernel (same scheme as the forward): dS = P ∘ (dO·Vᵀ − δ) from the saved
 * log-normaliser, dQ = scale·dS·K, and the row sums of dS (gated).
 */
export function foxBwdQWideWGSL(spec: FoxKernelSpec, c: FoxWideConfig): string {
  return wideKernel(spec, c, 'dq');
}

/**
 * The wide dK/dV kernel: the same scheme with keys as rows (128 per workgroup) and a loop over
 * the query tiles that see them: Sᵀ = K·Qᵀ and dPᵀ = V·dOᵀ, P and dS from the saved
 * log-normaliser and δ of each query (staged per tile), dV += P·dO, dK += scale·dS·Q, and the
 * per-key sums of dS (gated). With `fuseDq` it also adds scale·dSᵀ·K of each query tile to dQ
 * (atomically; the dQ kernel is then not needed).
 */
export function foxBwdKVWideWGSL(spec: FoxKernelSpec, c: FoxWideConfig): string {
  return wideKernel(spec, c, 'dkv');
}

function wideKernel(spec: FoxKernelSpec, c: FoxWideConfig, kind: 'fwd' | 'dq' | 'dkv'): string {
  const { D, gated, acp } = spec;
  const fwd = kind === 'fwd';
  const dkv = kind === 'dkv';
  const fuse = dkv && c.fuseDq === true;
  const K = KINDS[kind];
  // row and column lengths (uniform names)
  const RT = dkv ? 'P.Tk' : 'P.Tq';
  const CT = dkv ? 'P.Tq' : 'P.Tk';
  const DV = dv(D);
  const sg = c.sg === true;
  const pf = c.pf === true;
  const { qt, pt, size } = parts(D, c);
  const tm = c.tm ?? 8;
  const THREADS = wideThreads(c);
  const NR = BQ / tm; // row groups (threads per score column)
  const nb = c.bk / CH; // score column vec4 groups per thread (and second-product chunks per tile)
  const no = Math.ceil(DV / 8); // output vec4 groups per thread
  const DCH = dchOf(c);
  const nd = Math.ceil(DV / DCH); // D chunks
  const rowsE = range(tm); // e = 4a + u
  const colsF = range(4 * nb); // f = 4c + u
  const row = (e: number) => `tr * 4u + ${4 * NR * (e >> 2) + (e & 3)}u`;
  const sc = (p: string, e: number, f: number) => `${p}${e}_${f}`;
  const s = (e: number, f: number) => sc('s', e, f);
  const acc = (e: number, g: number, name = 'o') => `${name}${e}_${g}`;
  const gGuard = (g: number) => (8 * (g + 1) > DV ? `tc + ${8 * g}u < DV` : 'true');
  const useRed = !sg && (fwd || gated);
  const accs = [...new Set(K.seconds.map((sd) => sd.acc))];
  // A stage is one D chunk of a score product (its operands staged transposed: At[d][row],
  // Bt[d][key]) or one key chunk of the second product (weights stored transposed and swizzled,
  // the key-side operand as is). Its global reads go to registers (`fetch`, issued one stage
  // ahead when pipelined) and then to workgroup memory (`store`).
  const per = (units: number) => Math.ceil(units / THREADS);
  const unit = (u: number, units: number, body: string) =>
    `    {\n      let x = lid + ${u * THREADS}u;\n${units % THREADS === 0 ? body : `      if (x < ${units}u) {\n${body}\n      }`}\n    }`;
  const ngOf = (ch: number) => Math.min(DCH, DV - DCH * ch);
  // per-column values staged with the first score stage: Λ of the keys (forward, dQ), or Λ − lse
  // and δ of the queries (dK/dV)
  const colFetch = (j0: string) =>
    dkv
      ? `    if (lid < BK) {
      let t = min(${j0} + lid, P.Tq - 1u);
      lr = lamAt(b, t + off, h);
      lsr = lse2[bh * P.Tq + t + P.lse2_offset];
      dlr = delta[(b * P.Tq + t) * P.H + h + P.delta_offset];
    }`
      : `    if (lid < BK) { lr = lamAt(b, min(${j0} + lid, P.Tk - 1u), h); }`;
  const colStore = dkv
    ? '    if (lid < BK) { lamK[lid] = (lr - lamRef) * LOG2E - lsr; dltC[lid] = dlr; }'
    : '    if (lid < BK) { lamK[lid] = (lr - lamRef) * LOG2E; }';
  // the row operand's reads (each workgroup re-reads the same 128 rows for every column tile, so
  // they hit L1) are issued with its stores, not ahead: fewer registers live across the compute
  // (measured faster: BENCHMARKS.md, fourth session)
  const rowFetch = (p: ScoreProduct, ch: number, u: number) =>
    `      let t = i0 + x % ${BQ}u;\n      var ar${u} = vec4<f32>(0.0);\n      if (t < ${RT}) { ar${u} = ${p.a}(b, t, h, ${DCH * ch}u + x / ${BQ}u)${p.scaled ? ' * P.scale2' : ''}; }`;
  const scoreFetch = (p: ScoreProduct, ch: number, j0: string, lam: boolean) => {
    const ng = ngOf(ch);
    return [
      ...range(per(c.bk * ng)).map((u) =>
        unit(
          u,
          c.bk * ng,
          `      let t = ${j0} + x % BK;\n      br${u} = vec4<f32>(0.0);\n      if (t < ${CT}) { br${u} = ${p.b}(b, t, h, ${DCH * ch}u + x / BK); }`,
        ),
      ),
      ...(lam ? [colFetch(j0)] : []),
    ].join('\n');
  };
  const scoreStore = (p: ScoreProduct, ch: number, lam: boolean) => {
    const ng = ngOf(ch);
    return [
      ...range(per(BQ * ng)).map((u) =>
        unit(
          u,
          BQ * ng,
          `${rowFetch(p, ch, u)}\n      let r = x % ${BQ}u;\n      let n = x / ${BQ}u;\n${lines(4, (k) => `      W[(4u * n + ${k}u) * ${BQ / 4}u + r / 4u][r % 4u] = ar${u}.${comp[k]};`)}`,
        ),
      ),
      ...range(per(c.bk * ng)).map((u) =>
        unit(
          u,
          c.bk * ng,
          `      let key = x % BK;\n      let g = x / BK;\n${lines(4, (k) => `      W[${qt}u + (4u * g + ${k}u) * (BK / 4u) + key / 4u][key % 4u] = br${u}.${comp[k]};`)}`,
        ),
      ),
      ...(lam ? [colStore] : []),
    ].join('\n');
  };
  const scoreCompute = (p: ScoreProduct, ch: number) => `    for (var d = 0u; d < ${4 * ngOf(ch)}u; d++) {
${lines(tm / 4, (a) => `      let a${a} = W[d * ${BQ / 4}u + ${NR * a}u + tr];`)}
${lines(nb, (cc) => `      let b${cc} = W[${qt}u + d * (BK / 4u) + ${8 * cc}u + tc];`)}
${rowsE
  .flatMap((e) =>
    colsF.map((f) => `      ${sc(p.acc, e, f)} = fma(a${e >> 2}.${comp[e & 3]}, b${f >> 2}.${comp[f & 3]}, ${sc(p.acc, e, f)});`),
  )
  .join('\n')}
    }`;
  type SStage = { kc: number; sd: SecondProduct };
  const secondFetch = ({ kc, sd }: SStage, j0: string) =>
    range(per(CH * DV))
      .map((u) =>
        unit(
          u,
          CH * DV,
          `      let t = ${j0} + ${CH * kc}u + x / DV;\n      nr${u} = vec4<f32>(0.0);\n      if (t < ${CT}) { nr${u} = ${sd.x}(b, t, h, x % DV); }`,
        ),
      )
      .join('\n');
  const secondStore = ({ kc, sd }: SStage) =>
    [
      ...range(4).flatMap((u) =>
        range(tm / 4).map(
          (a) =>
            `    W[(tc * 4u + ${u}u) * ${BQ / 4}u + ((tr + ${NR * a}u) ^ tc)] = vec4<f32>(${range(4)
              .map((uu) => sc(sd.w, 4 * a + uu, 4 * kc + u))
              .join(', ')});`,
        ),
      ),
      ...range(per(CH * DV)).map((u) => unit(u, CH * DV, `      W[${pt}u + x] = nr${u};`)),
    ].join('\n');
  const secondCompute = ({ sd }: SStage) => `    for (var j = 0u; j < ${CH}u; j++) {
      let sw = (j / 4u) % 8u;
${lines(tm / 4, (a) => `      let w${a} = W[j * ${BQ / 4}u + ((tr + ${NR * a}u) ^ sw)];`)}
${lines(
  no,
  (g) => `      if (${gGuard(g)}) {
        let x${g} = W[${pt}u + j * DV + tc + ${8 * g}u];
${lines(tm, (e) => `        ${acc(e, g, sd.acc)} = fma(vec4<f32>(w${e >> 2}.${comp[e & 3]}), x${g}, ${acc(e, g, sd.acc)});`)}
      }`,
)}
    }`;
  const regs = [...range(per(c.bk * Math.min(DCH, DV))).map((u) => `br${u}`), ...range(per(CH * DV)).map((u) => `nr${u}`)]
    .map((r) => `  var ${r} = vec4<f32>(0.0);`)
    .concat([dkv ? '  var lr = 0.0;\n  var lsr = 0.0;\n  var dlr = 0.0;' : '  var lr = 0.0;'])
    .join('\n');
  const xor = (v: string, op: string) => shuffleReduce(v, 3, op === 'max' ? (a, b) => `max(${a}, ${b})` : (a, b) => `${a} + ${b}`);
  // across the 8 threads of a row: `red[row][0..8]` as two vec4
  const redPut = (e: number, v: string) => `  red[(${row(e)}) * 2u + tc / 4u][tc % 4u] = ${v};`;
  const redGet = (e: number, v: string, op: string) =>
    `  { let r0 = red[(${row(e)}) * 2u]; let r1 = red[(${row(e)}) * 2u + 1u]; ${
      op === 'max'
        ? `${v} = max(max(max(r0.x, r0.y), max(r0.z, r0.w)), max(max(r1.x, r1.y), max(r1.z, r1.w)));`
        : `${v} = (r0.x + r0.y) + (r0.z + r0.w) + (r1.x + r1.y) + (r1.z + r1.w);`
    } }`;
  const exchange = (v: (e: number) => string, out: (e: number) => string, op: string, indent: string) =>
    sg
      ? rowsE.map((e) => `${indent}var ${out(e)} = ${v(e)};\n${xor(out(e), op)}`).join('\n')
      : `${rowsE.map((e) => indent + redPut(e, v(e)).trim()).join('\n')}\n${indent}workgroupBarrier();\n${rowsE
          .map((e) => `${indent}var ${out(e)} = 0.0;\n${indent}${redGet(e, out(e), op).trim()}`)
          .join('\n')}`;
  // the stages of a key tile: every D chunk of every score product, then the key chunks of the
  // second product; pipelined, each stage fetches the next one (the last: the next tile's first)
  // before computing, then stores it between two barriers
  const ss: SStage[] = range(nb).flatMap((kc) => K.seconds.map((sd) => ({ kc, sd })));
  const sStages = K.scores.flatMap((p, pi) => range(nd).map((ch) => ({ p, ch, lam: pi === 0 && ch === 0 })));
  const fetchS = (k: number, j0: string) => scoreFetch(sStages[k].p, sStages[k].ch, j0, sStages[k].lam);
  const storeS = (k: number) => scoreStore(sStages[k].p, sStages[k].ch, sStages[k].lam);
  const computeS = (k: number) => scoreCompute(sStages[k].p, sStages[k].ch);
  const ns = sStages.length;
  const scorePhase = pf
    ? range(ns)
        .map((k) =>
          k < ns - 1
            ? `${fetchS(k + 1, 'j0')}\n${computeS(k)}\n    workgroupBarrier();\n${storeS(k + 1)}\n    workgroupBarrier();`
            : // the last score stage prefetches the first key chunk; its weights exist only after `combine`
              `${secondFetch(ss[0], 'j0')}\n${computeS(k)}`,
        )
        .join('\n')
    : range(ns)
        .map((k) => `    workgroupBarrier();\n${fetchS(k, 'j0')}\n${storeS(k)}\n    workgroupBarrier();\n${computeS(k)}`)
        .join('\n');
  // fused dQ (dK/dV kernel): the tile's dS goes to workgroup memory as W[key][query vec4 group]
  // (each thread stores its rows' vec4s of 4 queries); thread x then owns 4 queries × 4 dims
  // (query group x / DV, dim group x % DV), sums dS·K over the 128 keys (K rows from L1) and adds
  // the result into dQ
  const dsStore = rowsE
    .flatMap((e) =>
      range(nb).map(
        (cc) =>
          `    W[(${row(e)}) * (BK / 4u) + tc + ${8 * cc}u] = vec4<f32>(${range(4)
            .map((u) => sc('dp', e, 4 * cc + u))
            .join(', ')});`,
      ),
    )
    .join('\n');
  const dqPairs = (c.bk / 4) * DV;
  const dqCompute = range(per(dqPairs))
    .map((n) =>
      unit(
        n,
        dqPairs,
        `      let cg = x / DV;
      let dg = x % DV;
${lines(4, (u) => `      var qa${u} = vec4<f32>(0.0);`)}
      for (var r = 0u; r < ${BQ}u; r++) {
        let w = W[r * (BK / 4u) + cg];
        let kr = ldK(b, min(i0 + r, P.Tk - 1u), h, dg);
${lines(4, (u) => `        qa${u} = fma(vec4<f32>(w.${comp[u]}), kr, qa${u});`)}
      }
      addDq4(b, j0 + cg * 4u, h, dg, qa0, qa1, qa2, qa3);`,
      ),
    )
    .join('\n');
  const dqStage = (pfNext: string, pfStore: string) =>
    pf
      ? `${pfNext}\n${dqCompute}\n    workgroupBarrier();\n${pfStore}\n    workgroupBarrier();`
      : `    workgroupBarrier();\n${dsStore}\n    workgroupBarrier();\n${dqCompute}`;
  const secondPhase = ss
    .map((st, k) => {
      if (!pf)
        return `    workgroupBarrier();\n${secondFetch(st, 'j0')}\n${secondStore(st)}\n    workgroupBarrier();\n${secondCompute(st)}`;
      const nx = ss[k + 1];
      const next = nx
        ? { f: secondFetch(nx, 'j0'), s: secondStore(nx) }
        : fuse
          ? { f: '', s: dsStore }
          : { f: fetchS(0, 'j0 + BK'), s: storeS(0) };
      const first = k === 0 ? `    workgroupBarrier();\n${secondStore(st)}\n    workgroupBarrier();\n` : '';
      return `${first}${next.f}\n${secondCompute(st)}\n    workgroupBarrier();\n${next.s}\n    workgroupBarrier();`;
    })
    .concat(fuse ? [dqStage(fetchS(0, 'j0 + BK'), storeS(0))] : [])
    .join('\n');
  const colVec = (name: string, arr: string) =>
    range(nb)
      .map(
        (cc) =>
          `    let ${name}${cc} = vec4<f32>(${range(4)
            .map((u) => `${arr}[tc * 4u + ${32 * cc + u}u]`)
            .join(', ')});`,
      )
      .join('\n');
  const lk = dkv ? `${colVec('lk', 'lamK')}\n${colVec('dc', 'dltC')}` : colVec('lk', 'lamK');
  // the ACP bound of a row's 64-row half
  const half = (e: number, pre: string) => (tm === 8 ? `${pre}${e >> 2}` : `${pre}T`);
  const keep = (e: number, f: number) => {
    const j = `j0 + tc * 4u + ${32 * (f >> 2) + (f & 3)}u`;
    if (dkv)
      return `${j} < P.Tq && ir${e} <= ${j} + off && ir${e} < P.Tk${acp ? ` && ${j} < ${half(e, 'qe')}` : ''}${inWindow(spec.window, `ir${e}`, `${j} + off`)}`;
    return `${j} <= ir${e} + off${acp ? ` && ${j} >= ${half(e, 'jf')}` : ''}${inWindow(spec.window, j, `ir${e} + off`)}`;
  };
  const lkOf = (f: number) => `lk${f >> 2}.${comp[f & 3]}`;
  // after the score products: online softmax (forward), dS and its row sums (dQ), or P, dS and
  // the per-key sums of dS (dK/dV)
  const combine = dkv
    ? `${rowsE
        .flatMap((e) =>
          colsF.map(
            (f) => `    ${s(e, f)} = select(0.0, exp2(${s(e, f)} + ${lkOf(f)} - lr${e}), ${keep(e, f)});
    ${sc('dp', e, f)} = ${s(e, f)} * (${sc('dp', e, f)} - dc${f >> 2}.${comp[f & 3]});`,
          ),
        )
        .join('\n')}
${rowsE.map((e) => `    cs${e} += ${colsF.map((f) => sc('dp', e, f)).join(' + ')};`).join('\n')}`
    : fwd
      ? `${rowsE.flatMap((e) => colsF.map((f) => `    ${s(e, f)} = select(NEG, ${s(e, f)} + lq${e} - ${lkOf(f)}, ${keep(e, f)});`)).join('\n')}
${exchange(
  (e) => colsF.map((f) => s(e, f)).reduce((a, x) => `max(${a}, ${x})`),
  (e) => `mt${e}`,
  'max',
  '    ',
)}
${rowsE
  .map(
    (e) => `    let mn${e} = max(m${e}, mt${e});
    let al${e} = exp2(m${e} - mn${e});
    m${e} = mn${e};
${colsF.map((f) => `    ${s(e, f)} = exp2(${s(e, f)} - mn${e});`).join('\n')}
    l${e} = l${e} * al${e} + ${colsF.map((f) => s(e, f)).join(' + ')};
${lines(no, (g) => `    ${acc(e, g)} *= al${e};`)}`,
  )
  .join('\n')}`
      : `${rowsE
          .flatMap((e) =>
            colsF.map(
              (f) =>
                `    ${s(e, f)} = select(0.0, exp2(${s(e, f)} + lq${e} - ${lkOf(f)}) * (${sc('dp', e, f)} - dl${e}), ir${e} < P.Tq && ${keep(e, f)});`,
            ),
          )
          .join('\n')}
${rowsE.map((e) => `    rs${e} += ${colsF.map((f) => s(e, f)).join(' + ')};`).join('\n')}`;
  const prologue = dkv
    ? lines(
        tm,
        (e) =>
          `  let ir${e} = i0 + ${row(e)};\n  let lr${e} = (lamAt(b, min(ir${e}, P.Tk - 1u), h) - lamRef) * LOG2E;\n  var cs${e} = 0.0;`,
      )
    : fwd
      ? `${lines(tm, (e) => `  let ir${e} = i0 + ${row(e)};\n  let lq${e} = (lamAt(b, min(ir${e}, P.Tq - 1u) + off, h) - lamRef) * LOG2E;`)}
${rowsE.map((e) => `  var m${e} = NEG;\n  var l${e} = 0.0;`).join('\n')}`
      : lines(
          tm,
          (e) => `  let ir${e} = i0 + ${row(e)};
  let ic${e} = min(ir${e}, P.Tq - 1u);
  let lq${e} = (lamAt(b, ic${e} + off, h) - lamRef) * LOG2E - lse2[bh * P.Tq + ic${e} + P.lse2_offset];
  let dl${e} = delta[(b * P.Tq + ic${e}) * P.H + h + P.delta_offset];
  var rs${e} = 0.0;`,
        );
  const rowSums = (v: string, out: (ir: string) => string) =>
    gated
      ? `${sg ? '' : '  workgroupBarrier();\n'}${exchange(
          (e) => `${v}${e}`,
          (e) => `rt${e}`,
          'sum',
          '  ',
        )}
${rowsE.map((e) => `  if (tc == 0u && ir${e} < ${RT}) { ${out(`ir${e}`)} = rt${e}; }`).join('\n')}`
      : '';
  const epilogue = dkv
    ? `${rowsE
        .map(
          (e) => `  if (ir${e} < P.Tk) {
${lines(no, (g) => `    if (${gGuard(g)}) {\n      stDK(b, ir${e}, h, tc + ${8 * g}u, ${acc(e, g, 'dk')} * P.scale);\n      stDV(b, ir${e}, h, tc + ${8 * g}u, ${acc(e, g, 'dv')});\n    }`)}
  }`,
        )
        .join('\n')}
${rowSums('cs', (ir) => `colsum[(b * P.Tk + ${ir}) * P.H + h]`)}`
    : fwd
      ? `${sg ? '' : '  workgroupBarrier();\n'}${exchange(
          (e) => `l${e}`,
          (e) => `lt${e}`,
          'sum',
          '  ',
        )}
${rowsE
  .map(
    (e) => `  if (ir${e} < P.Tq) {
    let inv = 1.0 / lt${e};
${lines(no, (g) => `    if (${gGuard(g)}) { stO(b, ir${e}, h, tc + ${8 * g}u, ${acc(e, g)} * inv); }`)}
    if (tc == 0u) { lse2[bh * P.Tq + ir${e}] = m${e} + log2(lt${e}); }
  }`,
  )
  .join('\n')}`
      : `${rowsE
          .map(
            (e) => `  if (ir${e} < P.Tq) {
${lines(no, (g) => `    if (${gGuard(g)}) { stDQ(b, ir${e}, h, tc + ${8 * g}u, ${acc(e, g)} * P.scale); }`)}
  }`,
          )
          .join('\n')}
${rowSums('rs', (ir) => `rowsum[(b * P.Tq + ${ir}) * P.H + h]`)}`;
  const io = fwd
    ? `${rowAccessor(spec, 'o', 'P.Tq', 'stO', true)}`
    : dkv
      ? `${rowAccessor(spec, 'dout', 'P.Tq', 'ldDO', false)}\n${rowAccessor(spec, 'dk', 'P.Tk', 'stDK', true)}\n${rowAccessor(spec, 'dv', 'P.Tk', 'stDV', true)}${
          fuse ? `\n${atomicDq(D)}` : ''
        }`
      : `${rowAccessor(spec, 'dout', 'P.Tq', 'ldDO', false)}\n${rowAccessor(spec, 'dq', 'P.Tq', 'stDQ', true)}`;
  // the column tiles a workgroup visits, [kt0, ktEnd)
  const colRange = dkv
    ? `  var kt0 = 0u;
  if (i0 > off) { kt0 = (i0 - off) / BK; }
  var qEnd = P.Tq;
${
  acp
    ? `  let kb = bh * P.nkb64 + P.lastq_offset;
  let t64 = i0 / 64u;
  let qe0 = u32(max(lastq[kb + t64] + 1, 0)) * 64u;
  let qe1 = u32(max(lastq[kb + min(t64 + 1u, P.nkb64 - 1u)] + 1, 0)) * 64u;
  qEnd = min(qEnd, max(qe0, qe1));${tm === 8 ? '' : `\n  let qeT = select(qe0, qe1, tr >= ${NR / 2}u);`}`
    : ''
}${spec.window ? `\n${WINDOW_END(`min(i0 + ${BQ}u, P.Tk) - 1u`)}` : ''}
  let ktEnd = (qEnd + BK - 1u) / BK;`
    : `  let pLast = min(i0 + ${BQ}u, P.Tq) - 1u + off;
  var kStart = 0u;
  var jf0 = 0u;
  var jf1 = 0u;
${
  acp
    ? `  let qb = bh * P.nqb64 + P.first_offset;
  let t64 = i0 / 64u;
  jf0 = u32(first[qb + t64]) * 64u;
  jf1 = u32(first[qb + min(t64 + 1u, P.nqb64 - 1u)]) * 64u;
  kStart = min(jf0, jf1);${tm === 8 ? '' : `\n  let jfT = select(jf0, jf1, tr >= ${NR / 2}u);`}`
    : ''
}${spec.window ? `\n${WINDOW_START('i0 + off')}` : ''}
  let kt0 = kStart / BK;
  let ktEnd = pLast / BK + 1u;`;
  return `${sg ? 'enable subgroups;\ndiagnostic(off, subgroup_uniformity);\n' : ''}const DV = ${DV}u;
const BK = ${c.bk}u;
const NEG = -1.0e30;
const LOG2E = 1.4426950408889634;
var<workgroup> W: array<vec4<f32>, ${size}>;
${useRed ? `var<workgroup> red: array<vec4<f32>, ${BQ * 2}>;\n` : ''}var<workgroup> lamK: array<f32, ${c.bk}>;
${dkv ? `var<workgroup> dltC: array<f32, ${c.bk}>;\n` : ''}${rowAccessor(spec, 'q', 'P.Tq', 'ldQ', false)}
${rowAccessor(spec, 'k', 'P.Tk', 'ldK', false)}
${rowAccessor(spec, 'v', 'P.Tk', 'ldV', false)}
${io}
${lamFn(gated)}

@compute @workgroup_size(${THREADS})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>${
    sg ? ', @builtin(subgroup_invocation_id) sgl: u32, @builtin(subgroup_size) sgs: u32, @builtin(subgroup_id) sgid: u32' : ''
  }) {
  let lin = ${sg ? 'sgid * sgs + sgl' : 'lid'};
  let tr = lin / 8u;
  let tc = lin % 8u;
  let bh = wid.y;
  let b = bh / P.H;
  let h = bh % P.H;
  let off = P.Tk - P.Tq;
${
  dkv
    ? `  let i0 = wid.x * ${BQ}u;\n  let lamRef = lamAt(b, i0, h);`
    : `  let nqt = (P.Tq + ${BQ - 1}u) / ${BQ}u;\n  let i0 = (nqt - 1u - wid.x) * ${BQ}u;\n  let lamRef = lamAt(b, i0 + off, h);`
}
${prologue}
${colRange}
${accs.flatMap((a) => rowsE.flatMap((e) => range(no).map((g) => `  var ${acc(e, g, a)} = vec4<f32>(0.0);`))).join('\n')}
${regs}
${pf ? `${fetchS(0, 'kt0 * BK')}\n${storeS(0)}\n  workgroupBarrier();` : ''}
  for (var kt = kt0; kt < ktEnd; kt++) {
    let j0 = kt * BK;
${K.scores.flatMap((p) => rowsE.flatMap((e) => colsF.map((f) => `    var ${sc(p.acc, e, f)} = 0.0;`))).join('\n')}
${scorePhase}
${lk}
${combine}
${secondPhase}
  }
${epilogue}
}
`;
}

/**
 * `addDq4(b, t, h, g, x0..x3)`: dQ[b, t + u, h, 4g..4g+3] += scale·x_u for the queries t + u < Tq,
 * on `dq` bound as `array<atomic<u32>>` (f32 bits; WGSL has no float atomics, so compare-exchange).
 * For a full group of four queries the 16 loads are issued together, then the 16 exchanges (two
 * round trips to L2 instead of 32 when nothing collides); an exchange that lost a race retries
 * in `addF`'s loop.
 */
function atomicDq(D: number): string {
  const idx = (u: number, k: number) => `i + ${u}u * P.H * ${D}u + ${k}u`;
  const uk = range(4).flatMap((u) => range(4).map((k) => [u, k] as const));
  const val = (u: number, k: number) => `x${u}.${comp[k]} * P.scale`;
  return `${atomicAddF32('dq')}
fn addDq4(b: u32, t: u32, h: u32, g: u32, x0: vec4<f32>, x1: vec4<f32>, x2: vec4<f32>, x3: vec4<f32>) {
  let i = ((b * P.Tq + t) * P.H + h) * ${D}u + g * 4u;
  if (t + 3u < P.Tq) {
${uk.map(([u, k]) => `    let o${u}${k} = atomicLoad(&dq[${idx(u, k)}]);`).join('\n')}
${uk.map(([u, k]) => `    let r${u}${k} = atomicCompareExchangeWeak(&dq[${idx(u, k)}], o${u}${k}, bitcast<u32>(bitcast<f32>(o${u}${k}) + ${val(u, k)}));`).join('\n')}
${uk.map(([u, k]) => `    if (!r${u}${k}.exchanged) { addF(${idx(u, k)}, ${val(u, k)}); }`).join('\n')}
    return;
  }
${range(4)
  .map(
    (u) =>
      `  if (t + ${u}u < P.Tq) {\n${range(4)
        .map((k) => `    addF(${idx(u, k)}, ${val(u, k)});`)
        .join('\n')}\n  }`,
  )
  .join('\n')}
}`;
}
