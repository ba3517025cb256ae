import { type RowLayout, rowAccessor } from '../wgsl/rows.js';
import { comp, dv, lines, range } from '../wgsl/util.js';
import type { Gate } from './attention-cpu.js';
import { reductionArgs, workgroupReductions } from './attention-wgsl-threshold.js';

/**
 * The forward kernel of SPARSEK attention on WebGPU (float32, FlashAttention-style online
 * softmax in base 2). One workgroup per (query block of `bq` rows, b·h); each thread owns a
 * `tm × tn` micro-tile of every score tile (rows `tr·tm + e`, columns `tc + NC·f`) and `tm` rows
 * × its vec4 groups `tc + NC·f` of the output.
 *
 * The block's keys come in tiles of `bk`, first
 * (a) the window: the contiguous range `[max(0, i0 − w + 1), i1]`, pairs with
 *     `i − w < j ≤ i` kept with gate 1;
 * (b) the selected keys: a necessary condition for `j` to be selected by a query of the block is
 *     `j ≤ i1 − w` and `u_j > τ_lo` (τ_lo = τ of the block's first query with a prefix; τ is
 *     non-decreasing). The candidates are scanned from the τ kernel's list of entering entries
 *     (`selp`, `selu`: every position any query selects, in order), one chunk of `nt` at a time,
 *     compacted (a workgroup prefix sum) into a ring buffer in workgroup memory and consumed in
 *     tiles of `bk` gathered K/V rows. Per pair the exact test is `j ≤ i − w` and `u_j > τ_i`
 *     (or τ_i the sentinel: gate 1), gate `g = min(1, u_j − τ_i)`.
 * A key can sit in both ranges (window of some rows, prefix of others): the two tests are
 * complementary per pair, so no pair is counted twice.
 *
 * Gates: 'kv' scales the score (`g·scale·q·k`) and the value, 'v' only the value, 'logit' adds
 * `log g` to the score. The row sum accumulates the softmax weights; the value accumulator gets
 * the weights times g ('kv', 'v'). Masked pairs get weight 0 (an explicit select, so a tile that
 * a row sees no key of adds nothing). Rows whose τ is NaN write NaN (o and lse).
 *
 * Cost per block: O((w + bq + |candidates|)·bq·D) for the attention part plus the scan of the
 * entering list up to `i1 − w` (scalar reads, O(list) ≤ O(T)).
 */
export interface SkFwdConfig {
  bq: number;
  bk: number;
  /** Rows per thread (4 or 8). */
  tm: number;
  /** Columns per thread (1, 2, 4 or 8). */
  tn: number;
  /** Subgroup prefix sums for the candidate compaction (else a workgroup-memory scan). */
  sg: boolean;
}

export interface SkFwdSpec extends RowLayout {
  gate: Gate;
  tiles: SkFwdConfig;
}

export function skFwdThreads(t: SkFwdConfig): number {
  return (t.bq / t.tm) * (t.bk / t.tn);
}

/** Workgroup-memory bytes of the forward kernel. */
export function skFwdSmemBytes(D: number, t: SkFwdConfig): number {
  const DV = dv(D);
  const nt = skFwdThreads(t);
  const nc = t.bk / t.tn;
  const vec4s = t.bq * DV + 2 * t.bk * (DV + 1) + (t.bk * t.bq) / 4;
  const ring = t.bk + nt;
  const red = t.sg ? Math.max(1, nt / 4) : nt;
  return vec4s * 16 + (t.bq * nc + 2 * t.bk + 2 * ring + red * 5) * 4 + 16;
}

export function sparsekForwardWGSL(spec: SkFwdSpec): string {
  const { D, tiles, gate } = spec;
  const dyn = spec.dynamic === true;
  const { bq, bk, tm, tn, sg } = tiles;
  const nc = bk / tn;
  const nt = skFwdThreads(tiles);
  const DVc = dv(D);
  const fg = Math.ceil(DVc / nc);
  const guard = (f: number) => (dyn || nc * fg > DVc ? `tc + ${nc * f}u < DV` : 'true');
  const args = reductionArgs(sg);
  const dims = dyn ? `const DVMAX = ${DVc}u;` : `const DV = ${DVc}u;\nconst DVP = ${DVc + 1}u;`;
  const dvArr = dyn ? 'DVMAX' : 'DV';
  const e4 = tm / 4;
  const sc = (e: number, f: number) => `s${e}_${f}`;
  const all = (fn: (e: number, f: number) => string) =>
    range(tm)
      .flatMap((e) => range(tn).map((f) => fn(e, f)))
      .join('\n');
  const gated = gate === 'kv' ? `g * d` : gate === 'logit' ? 'd + log2(g)' : 'd';
  return `${sg ? 'enable subgroups;\ndiagnostic(off, subgroup_uniformity);\n' : ''}${dims}
const BQ = ${bq}u;
const BK = ${bk}u;
const TM = ${tm}u;
const NC = ${nc}u;
const NT = ${nt}u;
const RING = ${bk + nt}u;
const NEG = -1.0e30;
const SENT_LIM = -1.0e38;
const INV = 1073741824u;
const LN2 = 0.6931471805599453;
var<workgroup> Qs: array<vec4<f32>, ${bq} * ${dvArr}>;
var<workgroup> Ks: array<vec4<f32>, ${bk} * (${dvArr} + 1u)>;
var<workgroup> Vs: array<vec4<f32>, ${bk} * (${dvArr} + 1u)>;
var<workgroup> Pt: array<vec4<f32>, ${(bk * bq) / 4}>;
var<workgroup> red: array<f32, ${bq * nc}>;
var<workgroup> kpos: array<u32, BK>;
var<workgroup> ku: array<f32, BK>;
var<workgroup> rpos: array<u32, RING>;
var<workgroup> ru: array<f32, RING>;
var<workgroup> ctl: vec2<u32>;
${workgroupReductions(nt, sg)}
${rowAccessor(spec, 'q', 'P.T', 'ldQ', false)}
${rowAccessor(spec, 'k', 'P.T', 'ldK', false)}
${rowAccessor(spec, 'v', 'P.T', 'ldV', false)}
${rowAccessor(spec, 'o', 'P.T', 'stO', true)}

@compute @workgroup_size(${nt})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>${args.params}) {
${args.locals}${dyn ? '  let DV = P.loopDV;\n  let DVP = DV + 1u;\n' : ''}  let bh = wid.y;
  let b = bh / P.H;
  let h = bh % P.H;
  let T = P.T;
  let w = P.w;
  let nqt = (T + BQ - 1u) / BQ;
  let i0 = (nqt - 1u - wid.x) * BQ;
  let i1 = min(i0 + BQ, T) - 1u;
  let tr = lid / NC;
  let tc = lid % NC;
  let ib = i0 + tr * TM;
  for (var x = lid; x < BQ * DV; x += NT) {
    let i = i0 + x / DV;
    var val = vec4<f32>(0.0);
    if (i < T) { val = ldQ(b, i, h, x % DV) * P.scale2; }
    Qs[x] = val;
  }
${lines(tm, (e) => `  var tq${e} = 0.0;\n  if (ib + ${e}u < T) { tq${e} = tau[bh * T + ib + ${e}u + P.tau_offset]; }\n  let sent${e} = tq${e} < SENT_LIM;\n  var m${e} = NEG;\n  var l${e} = 0.0;`)}
${range(tm)
  .flatMap((e) => range(fg).map((f) => `  var acc${e}_${f} = vec4<f32>(0.0);`))
  .join('\n')}

  // (a) the window range, then (b) the candidates of the selected part
  var j0 = 0u;
  if (i0 + 1u > w) { j0 = i0 + 1u - w; }
  let hasWin = w > 0u;
  var scanDone = 1u;
  var ns = 0u;
  var tlo = 0.0;
  var lim = 0u;
  if (i1 >= w) {
    scanDone = 0u;
    lim = i1 - w;
    tlo = tau[bh * T + max(i0, w) + P.tau_offset];
    if (lid == 0u) { ctl = vec2<u32>(nsel[bh + P.nsel_offset], 0u); }
    ns = workgroupUniformLoad(&ctl).x;
  }
  let lb = bh * P.Ls;
  var pos = 0u;
  var head = 0u;
  var tail = 0u;
  loop {
    var sel = 0u;
    var n = 0u;
    var origin = 0u;
    if (hasWin && j0 <= i1) {
      origin = j0;
      n = min(BK, i1 + 1u - j0);
      j0 += BK;
    } else {
      loop {
        if (tail - head >= BK || scanDone != 0u) { break; }
        let a = pos + lid;
        var flag = 0u;
        var pj = 0u;
        var uj = 0.0;
        if (a < ns) {
          pj = selp[lb + a + P.selp_offset];
          uj = selu[lb + a + P.selu_offset];
          if (pj <= lim && (tlo < SENT_LIM || uj > tlo)) { flag = 1u; }
        }
        let s = scan(flag, lid, sgl, sgid, nsg);
        if (flag == 1u) {
          let slot = (tail + s.x) % RING;
          rpos[slot] = pj;
          ru[slot] = uj;
        }
        if (lid == 0u) {
          let last = min(pos + NT, ns);
          var end = 0u;
          if (last >= ns || selp[lb + last - 1u + P.selp_offset] > lim) { end = 1u; }
          ctl = vec2<u32>(s.y, end);
        }
        let cc = workgroupUniformLoad(&ctl);
        tail += cc.x;
        scanDone = cc.y;
        pos += NT;
      }
      if (tail == head) { break; }
      sel = 1u;
      origin = head;
      n = min(BK, tail - head);
      head += n;
    }

    workgroupBarrier();
    for (var x = lid; x < BK * DV; x += NT) {
      let r = x / DV;
      let c = x % DV;
      var j = INV;
      var uu = 0.0;
      if (r < n) {
        if (sel == 0u) { j = origin + r; } else {
          let s = (origin + r) % RING;
          j = rpos[s];
          uu = ru[s];
        }
      }
      var kv = vec4<f32>(0.0);
      var vv = vec4<f32>(0.0);
      if (j < INV) {
        kv = ldK(b, j, h, c);
        vv = ldV(b, j, h, c);
      }
      Ks[r * DVP + c] = kv;
      Vs[r * DVP + c] = vv;
      if (c == 0u) {
        kpos[r] = j;
        ku[r] = uu;
      }
    }
    workgroupBarrier();
${all((e, f) => `    var ${sc(e, f)} = 0.0;`)}
    for (var c = 0u; c < DV; c++) {
${lines(tm, (e) => `      let a${e} = Qs[(tr * TM + ${e}u) * DV + c];`)}
${lines(tn, (f) => `      let b${f} = Ks[(tc + ${nc * f}u) * DVP + c];`)}
${all((e, f) => `      ${sc(e, f)} = ${comp.reduce((r, x) => `fma(a${e}.${x}, b${f}.${x}, ${r})`, sc(e, f))};`)}
    }
${lines(tn, (f) => `    let jc${f} = kpos[tc + ${nc * f}u];\n    let uc${f} = ku[tc + ${nc * f}u];`)}
${all(
  (e, f) => `    var ok${e}_${f} = false;
    var g${e}_${f} = 1.0;
    {
      let i = ib + ${e}u;
      let j = jc${f};
      if (sel == 0u) { ok${e}_${f} = j <= i && j + w > i; }
      else {
        ok${e}_${f} = j + w <= i && (sent${e} || uc${f} > tq${e});
        if (!sent${e}) { g${e}_${f} = min(1.0, uc${f} - tq${e}); }
      }
      let g = g${e}_${f};
      let d = ${sc(e, f)};
      ${sc(e, f)} = select(NEG, ${gated}, ok${e}_${f});
    }`,
)}
${lines(tm, (e) => `    red[(tr * TM + ${e}u) * NC + tc] = ${range(tn).reduce((acc, f) => (acc ? `max(${acc}, ${sc(e, f)})` : sc(e, f)), '')};`)}
    workgroupBarrier();
${lines(
  tm,
  (e) => `    var mt${e} = NEG;
    for (var c = 0u; c < NC; c++) { mt${e} = max(mt${e}, red[(tr * TM + ${e}u) * NC + c]); }
    let mn${e} = max(m${e}, mt${e});
    let al${e} = exp2(m${e} - mn${e});
    m${e} = mn${e};`,
)}
${all((e, f) => `    let p${e}_${f} = select(0.0, exp2(${sc(e, f)} - mn${e}), ok${e}_${f});`)}
${lines(
  tm,
  (e) =>
    `    l${e} = l${e} * al${e} + ${range(tn)
      .map((f) => `p${e}_${f}`)
      .join(' + ')};`,
)}
${range(tn)
  .flatMap((f) =>
    range(e4).map(
      (r) =>
        `    Pt[(tc + ${nc * f}u) * (BQ / 4u) + tr * ${e4}u + ${r}u] = vec4<f32>(${range(4)
          .map((x) => (gate === 'logit' ? `p${4 * r + x}_${f}` : `p${4 * r + x}_${f} * g${4 * r + x}_${f}`))
          .join(', ')});`,
    ),
  )
  .join('\n')}
${range(tm)
  .flatMap((e) => range(fg).map((f) => `    acc${e}_${f} *= al${e};`))
  .join('\n')}
    workgroupBarrier();
    for (var kk = 0u; kk < n; kk++) {
${lines(e4, (r) => `      let wv${r} = Pt[kk * (BQ / 4u) + tr * ${e4}u + ${r}u];`)}
${lines(
  fg,
  (f) => `      if (${guard(f)}) {
        let xv = Vs[kk * DVP + tc + ${nc * f}u];
${lines(tm, (e) => `        acc${e}_${f} = fma(vec4<f32>(wv${Math.floor(e / 4)}.${comp[e % 4]}), xv, acc${e}_${f});`)}
      }`,
)}
    }
  }

  workgroupBarrier();
${lines(tm, (e) => `  red[(tr * TM + ${e}u) * NC + tc] = l${e};`)}
  workgroupBarrier();
${lines(
  tm,
  (e) => `  {
    let i = ib + ${e}u;
    var lt = 0.0;
    for (var c = 0u; c < NC; c++) { lt += red[(tr * TM + ${e}u) * NC + c]; }
    if (i < T) {
      let bad = is_nan(tq${e});
      let inv = 1.0 / lt;
${lines(fg, (f) => `      if (${guard(f)}) { stO(b, i, h, tc + ${nc * f}u, select(acc${e}_${f} * inv, vec4<f32>(f32_nan()), bad)); }`)}
      if (tc == 0u) { lse[bh * T + i] = select((m${e} + log2(lt)) * LN2, f32_nan(), bad); }
    }
  }`,
)}
}
`;
}
