import { rowAccessor } from '../wgsl/rows.js';
import { lines, range } from '../wgsl/util.js';
import { lamFn } from './wgsl-tiled.js';

/**
 * The forward kernel of forgetting attention at precision 'high': QKᵀ and PV on the tensor cores
 * through WGSL subgroup matrices (`chromium_experimental_subgroup_matrix`, f16 × f16 → f32 at
 * 16×16×16), with the softmax and Λ bookkeeping in f32.
 *
 * Range rule: q, k and v are **scaled**, never refused. A pre-pass (`foxMaxAbsWGSL`) writes the
 * largest |x| of each tensor into a stats buffer on the device (no readback); the kernel scales
 * each tensor by the power of two 2^e that puts its max-abs in [2^14, 2^15) before converting it
 * to f16 on load, so no finite f32 value becomes ±Inf; the products are multiplied back by
 * 2^−(e_q+e_k) (scores) and 2^−e_v (output), which is exact. Values below 2^−24 of 2^14/max|x|
 * lose bits as f16 subnormals or become 0, like the 'high' matmul's operands.
 *
 * Scheme: a workgroup owns 32·`sg` query rows, one subgroup 32 of them (two 16-row blocks), and
 * loops over key tiles of `bk` keys from its diagonal tile backwards (newest keys first, so a row
 * meets its largest scores early). Per tile:
 * 1. K and V rows are read as f32, scaled, converted and staged in workgroup memory as f16;
 * 2. each subgroup computes its 32×bk scores S = Q·Kᵀ (Q as f16 left matrices held for the whole
 *    kernel, K as column-major right matrices) and stores them to its f32 scratch;
 * 3. each lane owns one query row: it reads the row's scores (columns rotated per lane group, so
 *    the 32 lanes hit distinct banks), applies scale·log2 e, Λ_i − Λ_j, the causal and ACP masks,
 *    and keeps the running row maximum m and sum l in f32; it writes P = exp2(s − m) as f16;
 * 4. O += P·V on the subgroup's f32 result matrices.
 * The running maximum is lazy: m moves only when a tile's maximum exceeds it by more than `tau`
 * (log2 units; P ≤ 2^tau stays far inside f16), and only then are the O matrices rescaled,
 * through the scratch, for the whole workgroup (a `workgroupUniformLoad`ed flag keeps the matrix
 * operations in uniform control flow). ACP: a subgroup's 32 rows lie in one 64-row ACP block, so
 * its first kept key is uniform; the tile loop starts at the workgroup's first kept tile.
 *
 * `emulate` generates the same kernel with the subgroup-matrix operations written out in plain
 * WGSL (left/right matrices in workgroup memory, result matrices as 8 values per lane, one
 * workgroup barrier around each load): for adapters without subgroup matrices (lavapipe in CI),
 * so that the tiling, masks, lazy rescaling and scaling are tested everywhere; it is slow.
 */
export interface FoxF16Config {
  /** Keys per tile: 16, 32 or 64. */
  bk: number;
  /** Subgroups (of 32 query rows each) per workgroup: 1, 2 or 4. */
  sg: number;
  /** Lazy rescaling threshold in log2 units (default 8; 0 rescales whenever the maximum grows). */
  tau?: number;
  /** Plain-WGSL subgroup matrices (see above). */
  emulate?: boolean;
  /**
   * Where O accumulates: 'matrix' (f32 result matrices across the key tiles, rescaled lazily, the
   * default) or 'lanes' (each tile's P·V goes through the scratch into D f32 registers per lane,
   * with an exact online maximum: no result loads, no rescaling branch).
   */
  oacc?: 'matrix' | 'lanes';
  /**
   * Left/right matrices as block-scoped `let`s, accumulators declared without initializers and
   * products started by `subgroupMatrixMultiply` (no value constructors), as in the 'high' matmul.
   */
  lets?: boolean;
  /** f32 → f16 through `pack2x16float` and bitcasts (as the 'high' matmul) instead of `f16(x)` conversions. */
  pack?: boolean;
  /**
   * How Q reaches its left matrices: 'resident' (default; its own workgroup array of all D dims)
   * or 'shared' (staged in chunks through the K/V/P array before the loop: less workgroup memory;
   * the matrices are then held in registers). Hardware only (the emulation keeps Q resident).
   */
  qstage?: 'resident' | 'shared';
  /**
   * Q, K, V and P in four workgroup arrays (each read by one kind of matrix, as the 'high' matmul's
   * A and B tiles) instead of one shared array; needs more workgroup memory (Q is not aliased).
   */
  split?: boolean;
  /** The next key tile (K, V, Λ) read into registers while the current one computes, written to workgroup memory at the top of the next iteration. */
  prefetch?: boolean;
  /**
   * Hardware checks only: 'scores' writes each row's scaled scores of its first key tile
   * (scale·log2 e·q_i·k_j for the tile's BK keys, unmasked) into o[row][0..BK) and nothing else;
   * 'ids' writes o[row][0..8) = (row, sg, lane, lid, kt0, ktEnd, eq, ek) as f32 at the end; 'q'
   * writes the row's staged (unscaled) Q from workgroup memory into o[row][0..D); 'k' makes lane
   * r < bk write row r of the last staged key tile (unscaled) into o[row][0..D).
   */
  debug?: 'scores' | 'ids' | 'q' | 'k';
}

/** What the kernel is generated for. */
export interface FoxF16Spec {
  D: number;
  gated: boolean;
  acp: boolean;
}

/** Head dims the kernel takes: multiples of 16 up to 64 (two row blocks of 64/16 O matrices per lane set). */
export function f16HeadDim(D: number): boolean {
  return D % 16 === 0 && D >= 16 && D <= 64;
}

/** Workgroup-memory bytes of the kernel (emulated: plus its matrix slots). */
export function f16SmemBytes(D: number, c: FoxF16Config): number {
  const g = geometry(D, c);
  return g.hs * 2 + g.sf * 4 + c.bk * 4 + 16 + (c.emulate ? c.sg * g.slots * 256 * 2 : 0);
}

/** Whether the kernel takes head dim D with this configuration within `maxShared` bytes. */
export function f16Fit(D: number, c: FoxF16Config, maxShared: number): boolean {
  const tau = c.tau ?? 8;
  return (
    f16HeadDim(D) &&
    [16, 32, 64].includes(c.bk) &&
    [1, 2, 4].includes(c.sg) &&
    tau >= 0 &&
    tau <= 15 &&
    geometry(D, c).DC > 0 &&
    f16SmemBytes(D, c) <= maxShared
  );
}

/** Query rows per workgroup. */
export const f16Rows = (c: FoxF16Config) => 32 * c.sg;

function geometry(D: number, c: FoxF16Config) {
  const BK = c.bk;
  const BQ = 32 * c.sg;
  const HSD = D + 8; // K, V rows (halves; 16-byte padding against bank conflicts)
  const HSP = BK + 8; // P rows
  // Q: 'resident' in its own array `Qs` (all of D, written once before the key loop), or
  // 'shared': staged in chunks of DC dims through `Hs` (which K, V and P reuse in the loop) and
  // held in registers as left matrices from then on. (The resident array was a guess at the
  // H200's wrong scores of 2026-12-02; their cause was a misaligned workgroup layout, see `flag`.)
  // The emulation reads Q where it lies, so it keeps Q resident whatever is asked.
  const split = c.split === true;
  const hsKVP = 2 * BK * HSD + BQ * HSP;
  const qShared = c.qstage === 'shared' && !split && c.emulate !== true;
  // shared: the widest chunk of 16·n dims that divides D and fits the array
  const chunks = range(D / 16)
    .map((i) => D - 16 * i)
    .filter((dc) => D % dc === 0);
  const DC = qShared ? (chunks.find((dc) => BQ * (dc + 8) <= hsKVP) ?? 0) : D;
  const HQ = DC + 8;
  const SFS = BK + 4; // f32 scratch rows
  const kOff = 0;
  const vOff = split ? 0 : BK * HSD;
  const pOff = split ? 0 : 2 * BK * HSD;
  // halves of the f16 arrays: Q (resident), then K, V and P (one shared `Hs`, or Ks, Vs, Ps)
  const hs = (qShared ? 0 : BQ * HQ) + hsKVP;
  const arr = split ? { q: 'Qs', k: 'Ks', v: 'Vs', p: 'Ps' } : { q: qShared ? 'Hs' : 'Qs', k: 'Hs', v: 'Hs', p: 'Hs' };
  const qDecl = qShared ? '' : `var<workgroup> Qs: array<f16, ${BQ * HQ}>;\n`;
  const f16Arrays = split
    ? `var<workgroup> Qs: array<f16, ${BQ * HQ}>;\nvar<workgroup> Ks: array<f16, ${BK * HSD}>;\nvar<workgroup> Vs: array<f16, ${BK * HSD}>;\nvar<workgroup> Ps: array<f16, ${BQ * HSP}>;\n`
    : `${qDecl}var<workgroup> Hs: array<f16, ${hsKVP}>;\n`;
  const sf = c.sg * 32 * SFS;
  const KD = D / 16;
  const NB = BK / 16;
  const ND = D / 16;
  // emulated left/right slots per subgroup: K, P, V (one per load of a tile; Q is read from Qs)
  const slots = NB * KD + 2 * NB + NB * ND;
  return { BK, BQ, HSD, HSP, DC, HQ, SFS, kOff, vOff, pOff, hs, sf, KD, NB, ND, slots, arr, f16Arrays, qShared };
}

/** Subgroup-matrix operations, real or emulated. */
interface MatOps {
  decl(name: string, kind: 'left' | 'right' | 'result'): string;
  /** `name` = the 16×16 matrix at `arr[off]`, row r / col c at `off + r·stride + c` (col-major: `off + c·stride + r`). */
  load(name: string, arr: string, off: string, colMajor: boolean, stride: string): string;
  store(name: string, arr: string, off: string, stride: string): string;
  zero(name: string): string;
  mma(acc: string, l: string, r: string): string;
  /** acc = l·r (a fresh accumulator). */
  mul(acc: string, l: string, r: string): string;
}

const TYPES = {
  left: 'subgroup_matrix_left<f16, 16, 16>',
  right: 'subgroup_matrix_right<f16, 16, 16>',
  result: 'subgroup_matrix_result<f32, 16, 16>',
};

/** Hardware matrices; `lets`: temporaries (all but Q and the accumulators) as `let`s, no value constructors. */
function realOps(lets: boolean): MatOps {
  const typeOf = (n: string) =>
    n.startsWith('o') || n.startsWith('s') ? TYPES.result : n.startsWith('kr') || n.startsWith('vr') ? TYPES.right : TYPES.left;
  const temp = (n: string) => lets && (n.startsWith('kr') || n.startsWith('vr') || n.startsWith('pl'));
  return {
    decl: (n, k) => (temp(n) ? '' : lets ? `  var ${n}: ${TYPES[k]};` : `  var ${n} = ${TYPES[k]}();`),
    load: (n, arr, off, col, stride) =>
      `    ${temp(n) ? 'let ' : ''}${n} = subgroupMatrixLoad<${typeOf(n)}, ${col ? 'col_major' : 'row_major'}>(&${arr}, ${off}, ${stride});`,
    store: (n, arr, off, stride) => `    subgroupMatrixStore<row_major>(&${arr}, ${off}, ${n}, ${stride});`,
    zero: (n) => `    ${n} = ${TYPES.result}();`,
    mma: (acc, l, r) => `    ${acc} = subgroupMatrixMultiplyAccumulate(${l}, ${r}, ${acc});`,
    // a zeroed accumulator, as the 'high' matmul does (an H200 probe found `subgroupMatrixMultiply` equally correct)
    mul: (acc, l, r) => `    ${acc} = ${TYPES.result}();\n    ${acc} = subgroupMatrixMultiplyAccumulate(${l}, ${r}, ${acc});`,
  };
}

/**
 * Emulated matrices: left/right ones live in per-subgroup slots of `EM` (f16, row-major 16×16:
 * left [m][k], right [k][n]), result ones as `array<f32, 8>` per lane (element e = lane + 32·t at
 * row e / 16, column e % 16). Every load of a phase has its own slot, and one workgroup barrier
 * separates a phase's loads from its products (`fence`); the work is in the helper functions of
 * `EMU_WGSL`, so that the software compiler sees each loop once.
 */
function emuOps(slotOf: (name: string) => number, slots: number, qAt: (name: string) => string): MatOps {
  const isResult = (n: string) => n.startsWith('o') || n.startsWith('s');
  const base = (n: string) => `(sg * ${slots}u + ${slotOf(n)}u) * 256u`;
  // Q's left matrices are read where they are resident (row-major in Qs): no slot, no copy
  const mma = (acc: string, l: string, r: string) =>
    l.startsWith('ql') ? `    em_mma_q(&${acc}, ${qAt(l)}, ${base(r)}, lane);` : `    em_mma(&${acc}, ${base(l)}, ${base(r)}, lane);`;
  return {
    decl: (n, k) => (k === 'result' ? `  var ${n}: array<f32, 8>;` : ''),
    load: (n, arr, off, col, stride) =>
      isResult(n)
        ? `    em_load_${arr}(&${n}, ${off}, ${stride}, lane);`
        : n.startsWith('ql')
          ? ''
          : `    em_slot_${arr}(${base(n)}, ${off}, ${col}, ${stride}, lane);`,
    store: (n, arr, off, stride) => `    em_store_${arr}(&${n}, ${off}, ${stride}, lane);`,
    zero: (n) => `    ${n} = array<f32, 8>();`,
    mma,
    mul: (acc, l, r) => `    ${acc} = array<f32, 8>();\n${mma(acc, l, r)}`,
  };
}

// trip counts the software compiler cannot see (`lane` < 32): fully unrolled, the 16×16 products
// made lavapipe's compile of the kernel take minutes (LLVM's coroutine split at every barrier)
const emSlot = (a: string) => `fn em_slot_${a}(slot: u32, off: u32, col: bool, stride: u32, lane: u32) {
  for (var t = 0u; t < 8u + (lane >> 8u); t++) {
    let e = lane + 32u * t;
    EM[slot + e] = ${a}[select(off + (e / 16u) * stride + e % 16u, off + (e % 16u) * stride + e / 16u, col)];
  }
}
`;
const emMmaQ = (HQ: number) => `fn em_mma_q(acc: ptr<function, array<f32, 8>>, qo: u32, rs: u32, lane: u32) {
  let n16 = 16u + (lane >> 8u);
  for (var t = 0u; t < 8u + (lane >> 8u); t++) {
    let e = lane + 32u * t;
    var x = (*acc)[t];
    for (var kk = 0u; kk < n16; kk++) { x += f32(Qs[qo + (e / 16u) * ${HQ}u + kk]) * f32(EM[rs + kk * 16u + e % 16u]); }
    (*acc)[t] = x;
  }
}
`;
const EMU_WGSL = `fn em_load_Sf(m: ptr<function, array<f32, 8>>, off: u32, stride: u32, lane: u32) {
  for (var t = 0u; t < 8u + (lane >> 8u); t++) { let e = lane + 32u * t; (*m)[t] = Sf[off + (e / 16u) * stride + e % 16u]; }
}
fn em_store_Sf(m: ptr<function, array<f32, 8>>, off: u32, stride: u32, lane: u32) {
  for (var t = 0u; t < 8u + (lane >> 8u); t++) { let e = lane + 32u * t; Sf[off + (e / 16u) * stride + e % 16u] = (*m)[t]; }
}
fn em_mma(acc: ptr<function, array<f32, 8>>, ls: u32, rs: u32, lane: u32) {
  let n16 = 16u + (lane >> 8u);
  for (var t = 0u; t < 8u + (lane >> 8u); t++) {
    let e = lane + 32u * t;
    var x = (*acc)[t];
    for (var kk = 0u; kk < n16; kk++) { x += f32(EM[ls + (e / 16u) * 16u + kk]) * f32(EM[rs + kk * 16u + e % 16u]); }
    (*acc)[t] = x;
  }
}
`;

/** WGSL of the power-of-two scale exponent of a max-abs (bits of an f32 ≥ 0): max|x|·2^e in [2^14, 2^15). */
export const F16_SCALE_WGSL = `fn fox_scale_exp(maxbits: u32) -> i32 {
  if (maxbits == 0u || maxbits >= 0x7f800000u) { return 0; }
  return clamp(14 - (i32(maxbits >> 23u) - 127), -126, 126);
}`;

/** Host mirror of `fox_scale_exp` (tests). */
export function f16ScaleExponent(maxAbs: number): number {
  if (maxAbs === 0 || !Number.isFinite(maxAbs)) return 0;
  const bits = new Uint32Array(new Float32Array([maxAbs]).buffer)[0];
  return Math.min(126, Math.max(-126, 14 - (((bits >>> 23) & 0xff) - 127)));
}

/**
 * The max-abs pre-pass: `stats[s]` = bits of max|x_s| for each tensor x_s of `parts` (default q,
 * k, v; the backward adds dO), by atomicMax on the bits of |x|, which order like the values for
 * non-negative floats; tensors bound as vec4 rows. Uniforms: the vec4 count of each part (`n4q`,
 * `n4k`) and `threads` (total invocations).
 */
export function foxMaxAbsWGSL(
  parts: [tensor: string, count: string][] = [
    ['q', 'n4q'],
    ['k', 'n4k'],
    ['v', 'n4k'],
  ],
): string {
  const part = (x: string, n: string, slot: number) => `  for (var i = t; i < P.${n}; i += P.threads) {
    let a = bitcast<vec4<u32>>(abs(${x}[i + P.${x}_offset / 4u]));
    m = max(m, max(max(a.x, a.y), max(a.z, a.w)));
  }
  red[lid] = m;
  workgroupBarrier();
  for (var w = 128u; w > 0u; w = w / 2u) {
    if (lid < w) { red[lid] = max(red[lid], red[lid + w]); }
    workgroupBarrier();
  }
  if (lid == 0u && red[0] != 0u) { atomicMax(&stats[${slot}], red[0]); }
  workgroupBarrier();
  m = 0u;`;
  return `var<workgroup> red: array<u32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = wg_linear(wid, nwg) * 256u + lid;
  var m = 0u;
${parts.map(([x, n], slot) => part(x, n, slot)).join('\n')}
}
`;
}

/**
 * The forward kernel (see the file comment): writes o `[B,Tq,H,D]` (vec4 rows) and the base-2
 * log-normaliser `lse2 [B,H,Tq]`, as the f32 kernels do (their backward reads it).
 * Bindings: q, k, v (vec4 rows), stats (u32: max-abs bits), lam (gated), first (ACP); o, lse2.
 * Grid: [⌈Tq / (32·sg)⌉, B·H].
 */
export function foxForwardF16WGSL(spec: FoxF16Spec, c: FoxF16Config): string {
  const { D, gated, acp } = spec;
  const g = geometry(D, c);
  const { BK, BQ, HSD, HSP, DC, HQ, SFS, kOff, vOff, pOff, KD, NB, ND, arr } = g;
  const tau = c.tau ?? 8;
  const emu = c.emulate === true;
  const threads = 32 * c.sg;
  const DV = D / 4;
  // matrix names: ql{i}_{kd} (Q, left), kr{n}_{kd} (K, right), s{i}_{n} (scores), pl{i}_{n}
  // (P, left), vr{n}_{j} (V, right), o{i}_{j} (output)
  const qNames = range(2).flatMap((i) => range(KD).map((kd) => `ql${i}_${kd}`));
  const kNames = range(NB).flatMap((n) => range(KD).map((kd) => `kr${n}_${kd}`));
  const pNames = range(2).flatMap((i) => range(NB).map((n) => `pl${i}_${n}`));
  const vNames = range(NB).flatMap((n) => range(ND).map((j) => `vr${n}_${j}`));
  const slotNames = [...qNames, ...kNames, ...pNames, ...vNames];
  const qAt = (n: string) => {
    const [i, kd] = n.slice(2).split('_').map(Number);
    return `(sg * 32u + ${16 * i}u) * ${HQ}u + ${16 * kd}u`;
  };
  const M = emu ? emuOps((n) => slotNames.indexOf(n) - qNames.length, g.slots, qAt) : realOps(c.lets === true);
  const lanesAcc = c.oacc === 'lanes';
  // f32 → f16: conversions, or pack2x16float and bitcasts
  const h4 = (v: string) => (c.pack ? `bitcast<vec4<f16>>(vec2<u32>(pack2x16float(${v}.xy), pack2x16float(${v}.zw)))` : `vec4<f16>(${v})`);
  const h1 = (v: string) => (c.pack ? `bitcast<vec2<f16>>(pack2x16float(vec2<f32>(${v}, 0.0))).x` : `f16(${v})`);
  const fence = emu ? '    workgroupBarrier();' : '';
  // a phase of loads and products: interleaved on hardware; emulated, all loads, one barrier, all products
  const phase = (items: { load: string[]; compute: string[] }[]) =>
    emu
      ? [...items.flatMap((it) => it.load), fence, ...items.flatMap((it) => it.compute)].join('\n')
      : items.flatMap((it) => [...it.load, ...it.compute]).join('\n');
  const sNames = range(2).flatMap((i) => range(NB).map((n) => `s${i}_${n}`));
  const oNames = range(2).flatMap((i) => range(ND).map((j) => `o${i}_${j}`));
  const decls = [
    ...qNames.map((n) => M.decl(n, 'left')),
    ...kNames.map((n) => M.decl(n, 'right')),
    ...pNames.map((n) => M.decl(n, 'left')),
    ...vNames.map((n) => M.decl(n, 'right')),
    ...sNames.map((n) => M.decl(n, 'result')),
    ...oNames.map((n) => M.decl(n, 'result')),
  ]
    .filter((x) => x)
    .join('\n');
  const sgBase = `sg * ${32 * SFS}u`;
  // staging of `rows` rows × `groups` vec4 groups, unit x → (row x / groups, group x % groups)
  const stage = (units: number, body: (x: string) => string) =>
    range(Math.ceil(units / threads))
      .map((u) => {
        const x = `(lid + ${u * threads}u)`;
        const inner = body(x);
        return units % threads === 0 || (u + 1) * threads <= units ? `  {\n${inner}\n  }` : `  if (${x} < ${units}u) {\n${inner}\n  }`;
      })
      .join('\n');
  const put4 = (arr: string, idx: string, v: string) =>
    range(4)
      .map((u) => `    ${arr}[${idx} + ${u}u] = ${v}[${u}];`)
      .join('\n');
  // Q: chunks of DC dims → left matrices ql{i}_{kd}
  const qChunks = range(D / DC)
    .map((ch) => {
      const groups = DC / 4;
      const st = stage(
        BQ * groups,
        (x) => `    let r = ${x} / ${groups}u;
    let gq = ${x} % ${groups}u;
    let t = i0 + r;
    var xq = vec4<f32>(0.0);
    if (t < P.Tq) { xq = ldQ(b, t, h, ${(ch * DC) / 4}u + gq) * sq; }
    let hq = ${h4('xq')};
${put4(arr.q, `r * ${HQ}u + gq * 4u`, 'hq')}`,
      );
      const loads = range(2)
        .flatMap((i) =>
          range(DC / 16).map((kd) =>
            M.load(`ql${i}_${(ch * DC) / 16 + kd}`, arr.q, `(sg * 32u + ${16 * i}u) * ${HQ}u + ${16 * kd}u`, false, `${HQ}u`),
          ),
        )
        .join('\n');
      return `  workgroupBarrier();\n${st}\n  workgroupBarrier();\n${loads}`;
    })
    .join('\n');
  const kvStage = stage(
    BK * DV,
    (x) => `    let r = ${x} / ${DV}u;
    let gk = ${x} % ${DV}u;
    let t = j0 + r;
    var xk = vec4<f32>(0.0);
    var xv = vec4<f32>(0.0);
    if (t < P.Tk) { xk = ldK(b, t, h, gk) * sk; xv = ldV(b, t, h, gk) * sv; }
    let hk = ${h4('xk')};
    let hv = ${h4('xv')};
${put4(arr.k, `${kOff}u + r * ${HSD}u + gk * 4u`, 'hk')}
${put4(arr.v, `${vOff}u + r * ${HSD}u + gk * 4u`, 'hv')}`,
  );
  // prefetch: registers fk{u}, fv{u} (scaled f32) and fl (the lane's Λ_j) of the tile at key `j`
  const kvUnits = BK * DV;
  const kvU = Math.ceil(kvUnits / threads);
  const lamU = Math.ceil(BK / threads);
  const kvPartial = (u: number) => kvUnits % threads !== 0 && (u + 1) * threads > kvUnits;
  const fetchKV = (j: string) =>
    [
      ...range(kvU).map(
        (u) =>
          `    { let x = lid + ${u * threads}u; let t = ${j} + x / ${DV}u; fk${u} = vec4<f32>(0.0); fv${u} = vec4<f32>(0.0); if (${kvPartial(u) ? `x < ${kvUnits}u && ` : ''}t < P.Tk) { fk${u} = ldK(b, t, h, x % ${DV}u) * sk; fv${u} = ldV(b, t, h, x % ${DV}u) * sv; } }`,
      ),
      ...range(lamU).map((u) => `    fl${u} = lamAt(b, min(${j} + lid + ${u * threads}u, P.Tk - 1u), h);`),
    ].join('\n');
  const putKV = [
    ...range(kvU).map(
      (u) => `    ${kvPartial(u) ? `if (lid + ${u * threads}u < ${kvUnits}u) ` : ''}{
    let x = lid + ${u * threads}u;
    let r = x / ${DV}u;
    let gk = x % ${DV}u;
    let hk = ${h4(`fk${u}`)};
    let hv = ${h4(`fv${u}`)};
${put4(arr.k, `${kOff}u + r * ${HSD}u + gk * 4u`, 'hk')}
${put4(arr.v, `${vOff}u + r * ${HSD}u + gk * 4u`, 'hv')}
    }`,
    ),
    ...range(lamU).map(
      (u) =>
        `    ${(u + 1) * threads > BK ? `if (lid + ${u * threads}u < ${BK}u) ` : ''}{ lamK[lid + ${u * threads}u] = (fl${u} - lamRef) * LOG2E; }`,
    ),
  ].join('\n');
  const pre = c.prefetch === true;
  const scores = phase(
    range(NB).map((n) => ({
      load: range(KD).map((kd) => M.load(`kr${n}_${kd}`, arr.k, `${kOff + 16 * n * HSD + 16 * kd}u`, true, `${HSD}u`)),
      compute: [
        ...range(KD).flatMap((kd) => range(2).map((i) => (kd === 0 ? M.mul : M.mma)(`s${i}_${n}`, `ql${i}_${kd}`, `kr${n}_${kd}`))),
        ...range(2).map((i) => M.store(`s${i}_${n}`, 'Sf', `${sgBase} + ${16 * i * SFS + 16 * n}u`, `${SFS}u`)),
      ],
    })),
  );
  const mask = (j: string) => `${j} <= row + off${acp ? ` && ${j} >= jf` : ''}`;
  // the lane's row: BK scores, columns rotated by lane group
  const softmax = `${lines(
    BK,
    (cc) => `    let c${cc} = (${cc}u + rot) & ${BK - 1}u;
    let k${cc} = rowOk && ${mask(`j0 + c${cc}`)};
    let x${cc} = select(NEG, Sf[rb + c${cc}] * cS + lq - lamK[c${cc}], k${cc});`,
  )}
    let mt = ${range(BK)
      .map((cc) => `x${cc}`)
      .reduce((a, x) => `max(${a}, ${x})`)};
${
  lanesAcc
    ? `    let mn = max(m, mt);
    alpha = exp2(m - mn);`
    : `    let need = mt > m + ${tau.toFixed(1)};
    let mn = select(m, mt, need);
    alpha = exp2(m - mn);
    if (need && m > -1.0e29) { flag[0] = 1u; }`
}
    m = mn;
    var ps = 0.0;
${lines(BK, (cc) => `    { let p = select(0.0, exp2(x${cc} - mn), k${cc}); ps += p; ${arr.p}[pb + c${cc}] = ${h1('p')}; }`)}
    l = l * alpha + ps;`;
  // O through the scratch, up to `cpp` column blocks at a time: `body(width, g0)` runs per lane
  // on its row's `width` values, which are O's columns from vec4 group g0 on
  const cpp = Math.min(NB, ND);
  const throughScratch = (body: (width: number, g0: number) => string, reload: boolean) =>
    range(Math.ceil(ND / cpp))
      .map((pass) => {
        const blocks = range(cpp)
          .map((jj) => pass * cpp + jj)
          .filter((j) => j < ND);
        return [
          ...range(2).flatMap((i) =>
            blocks.map((j, jj) => M.store(`o${i}_${j}`, 'Sf', `${sgBase} + ${16 * i * SFS + 16 * jj}u`, `${SFS}u`)),
          ),
          '    workgroupBarrier();',
          body(16 * blocks.length, 4 * cpp * pass),
          '    workgroupBarrier();',
          ...(reload
            ? range(2).flatMap((i) =>
                blocks.map((j, jj) => M.load(`o${i}_${j}`, 'Sf', `${sgBase} + ${16 * i * SFS + 16 * jj}u`, false, `${SFS}u`)),
              )
            : []),
          ...(reload ? ['    workgroupBarrier();'] : []),
        ].join('\n');
      })
      .join('\n');
  const rescale = throughScratch(
    (w) => `    for (var cc = 0u; cc < ${w}u; cc++) { let ci = (cc + rot) % ${w}u; Sf[rb + ci] = Sf[rb + ci] * alpha; }`,
    true,
  );
  const pv = phase(
    range(NB).flatMap((n) => [
      { load: range(2).map((i) => M.load(`pl${i}_${n}`, arr.p, `pb0 + ${16 * i * HSP + 16 * n}u`, false, `${HSP}u`)), compute: [] },
      ...range(ND).map((j) => ({
        load: [M.load(`vr${n}_${j}`, arr.v, `${vOff + 16 * n * HSD + 16 * j}u`, false, `${HSD}u`)],
        compute: range(2).map((i) => (lanesAcc && n === 0 ? M.mul : M.mma)(`o${i}_${j}`, `pl${i}_${n}`, `vr${n}_${j}`)),
      })),
    ]),
  );
  // lanes: this tile's P·V into the lane's registers oa (scaled by alpha first)
  const toLanes = throughScratch(
    (w, g0) =>
      lines(w / 4, (gg) => {
        const d0 = 4 * g0 + 4 * gg;
        return `    { let ci = rb + ${4 * gg}u; ${range(4)
          .map((u) => `oa${d0 + u} = oa${d0 + u} * alpha + Sf[ci + ${u}u];`)
          .join(' ')} }`;
      }),
    false,
  );
  const lanesEpilogue = `  if (rowOk) {
${lines(
  D / 4,
  (gg) =>
    `    stO(b, row, h, ${gg}u, vec4<f32>(${range(4)
      .map((u) => `oa${4 * gg + u}`)
      .join(', ')}) * inv);`,
)}
  }`;
  const epilogue = throughScratch(
    (w, g0) => `    if (rowOk) {
      for (var gg = 0u; gg < ${w / 4}u; gg++) {
        let ci = rb + gg * 4u;
        stO(b, row, h, ${g0}u + gg, vec4<f32>(Sf[ci], Sf[ci + 1u], Sf[ci + 2u], Sf[ci + 3u]) * inv);
      }
    }`,
    false,
  );
  const idsEpilogue = `  if (rowOk) {
    stO(b, row, h, 0u, vec4<f32>(f32(row), f32(sg), f32(lane), f32(lid)));
    stO(b, row, h, 1u, vec4<f32>(f32(kt0), f32(ktEnd), f32(eq), f32(ek)));
  }`;
  const qEpilogue = `  if (rowOk) {
${lines(
  D / 4,
  (gg) =>
    `    stO(b, row, h, ${gg}u, vec4<f32>(${range(4)
      .map((u) => `f32(${arr.q}[(sg * 32u + lane) * ${HQ}u + ${4 * gg + u}u])`)
      .join(', ')}) / sq);`,
)}
  }`;
  // the last staged key tile (keys kt0·BK…): lane r < BK writes key row r
  const kEpilogue = `  if (rowOk && lane < ${BK}u) {
${lines(
  D / 4,
  (gg) =>
    `    stO(b, row, h, ${gg}u, vec4<f32>(${range(4)
      .map((u) => `f32(${arr.k}[${kOff}u + lane * ${HSD}u + ${4 * gg + u}u])`)
      .join(', ')}) / sk);`,
)}
  }`;
  const acpStart = acp
    ? `  let qb = bh * P.nqb64 + P.first_offset;
  let jf = u32(first[qb + min((i0 + sg * 32u) / 64u, P.nqb64 - 1u)]) * 64u;
  let kStart = u32(first[qb + i0 / 64u]) * 64u;`
    : '  let kStart = 0u;';
  const header = emu
    ? 'enable f16;\n'
    : 'enable f16;\nenable subgroups;\nenable chromium_experimental_subgroup_matrix;\ndiagnostic(off, subgroup_uniformity);\n';
  const builtins = emu ? '' : ', @builtin(subgroup_id) sgid: u32, @builtin(subgroup_invocation_id) sgl: u32';
  return `${header}const NEG = -1.0e30;
const LOG2E = 1.4426950408889634;
${g.f16Arrays}var<workgroup> Sf: array<f32, ${g.sf}>;
var<workgroup> lamK: array<f32, ${BK}>;
var<workgroup> flag: array<u32, 4>;
${emu ? `var<workgroup> EM: array<f16, ${c.sg * g.slots * 256}>;\n` : ''}${rowAccessor({ D }, 'q', 'P.Tq', 'ldQ', false)}
${rowAccessor({ D }, 'k', 'P.Tk', 'ldK', false)}
${rowAccessor({ D }, 'v', 'P.Tk', 'ldV', false)}
${rowAccessor({ D }, 'o', 'P.Tq', 'stO', true)}
${lamFn(gated)}
${F16_SCALE_WGSL}
${emu ? EMU_WGSL + emMmaQ(HQ) + [...new Set([arr.k, arr.v, arr.p])].map(emSlot).join('') : ''}
@compute @workgroup_size(${threads})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>${builtins}) {
  let sg = ${emu ? 'lid / 32u' : 'sgid'};
  let lane = ${emu ? 'lid % 32u' : 'sgl'};
  let rot = lane / 8u;
  let bh = wid.y;
  let b = bh / P.H;
  let h = bh % P.H;
  let off = P.Tk - P.Tq;
  let nqt = (P.Tq + ${BQ - 1}u) / ${BQ}u;
  let i0 = (nqt - 1u - wid.x) * ${BQ}u;
  let lamRef = lamAt(b, i0 + off, h);
  let eq = fox_scale_exp(stats[P.stats_offset]);
  let ek = fox_scale_exp(stats[P.stats_offset + 1u]);
  let ev = fox_scale_exp(stats[P.stats_offset + 2u]);
  let sq = exp2(f32(eq));
  let sk = exp2(f32(ek));
  let sv = exp2(f32(ev));
  let cS = P.scale2 * exp2(f32(-eq - ek));
  let uv = exp2(f32(-ev));
  let row = i0 + sg * 32u + lane;
  let rowOk = row < P.Tq;
  let lq = (lamAt(b, min(row, P.Tq - 1u) + off, h) - lamRef) * LOG2E;
  let pb0 = ${pOff}u + sg * ${32 * HSP}u;
  let pb = pb0 + lane * ${HSP}u;
  let rb = ${sgBase} + lane * ${SFS}u;
${acpStart}
  let kt0 = kStart / ${BK}u;
  let ktEnd = (min(i0 + ${BQ}u, P.Tq) - 1u + off) / ${BK}u + 1u;
${decls}
  var m = NEG;
  var l = 0.0;${lanesAcc ? `\n${lines(D, (d) => `  var oa${d} = 0.0;`)}` : ''}
  var alpha = 1.0;
${qChunks}
${
  pre
    ? `${range(kvU)
        .map((u) => `  var fk${u}: vec4<f32>;\n  var fv${u}: vec4<f32>;`)
        .join('\n')}
${range(lamU)
  .map((u) => `  var fl${u} = 0.0;`)
  .join('\n')}
  if (ktEnd > kt0) {
${fetchKV(`(ktEnd - 1u) * ${BK}u`)}
  }`
    : ''
}
  for (var kt = ktEnd; kt > kt0; kt--) {
    let j0 = (kt - 1u) * ${BK}u;
    workgroupBarrier();
${
  pre
    ? `${putKV}
    if (kt - 1u > kt0) {
${fetchKV(`j0 - ${BK}u`).replace(/^/gm, '  ')}
    }`
    : `${kvStage.replace(/^/gm, '  ')}
    for (var x = lid; x < ${BK}u; x += ${threads}u) { lamK[x] = (lamAt(b, min(j0 + x, P.Tk - 1u), h) - lamRef) * LOG2E; }`
}
    if (lid == 0u) { flag[0] = 0u; }
    workgroupBarrier();
${scores}
    workgroupBarrier();
${
  c.debug === 'scores'
    ? `    if (kt == ktEnd && rowOk) {
${lines(
  BK / 4,
  (gg) =>
    `      stO(b, row, h, ${gg}u, vec4<f32>(${range(4)
      .map((u) => `Sf[rb + ${4 * gg + u}u]`)
      .join(', ')}) * cS);`,
)}
    }`
    : ''
}
${softmax}
${
  lanesAcc
    ? `    workgroupBarrier();
${pv}
${toLanes}`
    : `    if (workgroupUniformLoad(&flag[0]) != 0u) {
${rescale}
    }
${pv}`
}
  }
  let inv = select(0.0, uv / l, l > 0.0);
  if (rowOk && l > 0.0) { lse2[bh * P.Tq + row] = m + log2(l); }
${c.debug === 'ids' ? idsEpilogue : c.debug === 'q' ? qEpilogue : c.debug === 'k' ? kEpilogue : c.debug ? '' : lanesAcc ? lanesEpilogue : epilogue}
}
`;
}
