import { fail, fmtShape, type KernelInput, type Tensor, tensor, type WebGPUBackend } from '@foxgate/tensor';
import { atomicAddF32 } from '../wgsl/atomic.js';
import { cachedWGSL } from '../wgsl/cache.js';
import { type RowLayout, rowAccessor, rowElem, rowInput, vec4Rows } from '../wgsl/rows.js';
import { comp, lines, range, dv as vec4Groups } from '../wgsl/util.js';
import type { Gate, SkAttrs } from './attention-cpu.js';

/**
 * The WebGPU backward of SPARSEK attention: one WGSL kernel, one workgroup per (block of BQ
 * queries, b·h), from `q, k, v, dO, o [B,T,H,D]`, `u [B,T,H]` and the forward's saved
 * `lse, tau [B,H,T]` (float32; τ_i = −3.0e38 where the prefix has ≤ k entries; τ_i of i < window
 * is never read).
 *
 * Key traversal of a block i0 … i_last (the forward's): the candidates `j ≤ i0 − w` with
 * `u_j > τ_{i0}` (a necessary condition for any query of the block, τ being non-decreasing),
 * found by scanning u in chunks of NT positions and compacted in order (a ballot through
 * workgroup bit masks) into tiles of BK keys, then the contiguous range `max(0, i0−w+1) … i_last`
 * in tiles of BK. Every (i, j) of a tile is classified by the forward's tests (window
 * `i−w < j ≤ i`; selected `j ≤ i−w` with `u_j > τ_i`, gate `min(1, u_j − τ_i)`, fractional when
 * `u_j − τ_i < 1`); P comes from the saved lse, δ_i = dO_i·o_i. dq_i stays in registers and is
 * written once; dk_j, dv_j (each tile's sums over the block's queries) and the first du term
 * `Σ_i G_ij` over fractional pairs go to zero-initialised buffers by f32 atomic adds (a
 * compare-exchange loop). The projection's mean term is subtracted in the same kernel after the
 * block's means `mean_i = mean_{j∈F_i} G_ij` are known: a rescan of `u_j > τ_{first}`, `j ≤ i_last − w`
 * (scalar work only) adds `−Σ_{i: j∈F_i} mean_i` to du_j. Rows with τ_i = NaN (NaN in u) give NaN.
 *
 * Cost per block: O((BQ + w + s)·BQ·D) arithmetic with s = |S_{i0}| (the support of m_{i0}: k
 * plus its fractional overflow), O((BQ + w + s)·D) atomic adds, and the u scans, 2·i0/NT chunk
 * steps of NT scalar reads (3 barriers per chunk). In all O(T·(w + s + BQ)·D) for the attention
 * part plus O(T²/BQ) scalar reads of u, O(T·(w + s)·D / BQ) atomics. Atomic adds land in an order
 * that varies from run to run: dk, dv and du are reproducible only up to f32 rounding (dq is
 * summed in a fixed order). Workgroup memory ≈ (2·BQ + 2·BK)·D·4 + 3·BQ·BK·4 bytes.
 *
 * At the H200 target (T = 32k, k = window = 256, D = 64; BQ = BK = 32, 46.6 KB of workgroup memory,
 * else BK = 16 in 32 KB) one (b, h) is 1024 blocks of ≈ 18 tiles: ≈ 18M attended pairs (≈ 12 GFLOP
 * of f32 FMA work), ≈ 73M atomic adds and ≈ 33M scalar reads of u (estimated, not measured).
 * The kernel never forms a T×T array and reads nothing of the older keys beyond u.
 */

export interface SkBackwardInputs {
  q: Tensor;
  k: Tensor;
  v: Tensor;
  u: Tensor;
  dO: Tensor;
  o: Tensor;
  lse: Tensor;
  tau: Tensor;
}

export interface SkBackwardGrads {
  dq: Tensor;
  dk: Tensor;
  dv: Tensor;
  du: Tensor;
}

/** Block shape: BQ queries, BK keys per tile, NT threads, TM×TN score micro-tiles (NT = BQ/TM · BK/TN). */
export interface SkBwdConfig {
  bq: number;
  bk: number;
  nt: number;
  tm: number;
  tn: number;
}

/** In order of preference; the first that fits the device's workgroup memory and invocations is used. */
const CONFIGS: SkBwdConfig[] = [
  { bq: 32, bk: 32, nt: 256, tm: 2, tn: 2 },
  { bq: 32, bk: 16, nt: 256, tm: 2, tn: 1 },
  { bq: 16, bk: 16, nt: 128, tm: 2, tn: 1 },
  { bq: 16, bk: 8, nt: 64, tm: 2, tn: 1 },
  { bq: 8, bk: 8, nt: 64, tm: 1, tn: 1 },
  { bq: 4, bk: 8, nt: 32, tm: 1, tn: 1 },
  { bq: 4, bk: 4, nt: 16, tm: 1, tn: 1 },
];

const OP = 'sparsekAttention';

/** Workgroup memory of the kernel in bytes. */
export function skBwdSmemBytes(c: SkBwdConfig, D: number): number {
  const DV = vec4Groups(D);
  return (
    (2 * c.bq + 2 * c.bk) * DV * 16 + 3 * c.bq * c.bk * 4 + (c.nt + c.bk) * 4 + Math.ceil(c.nt / 32) * 4 + 4 * c.bq * 4 + 2 * c.bk * 4 + 16
  );
}

function checkConfig(c: SkBwdConfig): void {
  const ok =
    c.nt === (c.bq / c.tm) * (c.bk / c.tn) &&
    c.bq % c.tm === 0 &&
    c.bk % c.tn === 0 &&
    c.nt % c.bq === 0 &&
    c.nt % c.bk === 0 &&
    c.bk <= c.nt &&
    c.bq <= c.nt;
  if (!ok) fail(OP, `backward tile configuration ${JSON.stringify(c)} is inconsistent (need NT = BQ/TM·BK/TN, NT a multiple of BQ and BK)`);
}

function pickConfig(backend: WebGPUBackend, D: number): SkBwdConfig {
  const lim = backend.device.limits;
  for (const c of CONFIGS) {
    if (c.nt > lim.maxComputeInvocationsPerWorkgroup || c.nt > lim.maxComputeWorkgroupSizeX) continue;
    if (skBwdSmemBytes(c, D) <= lim.maxComputeWorkgroupStorageSize) return c;
  }
  fail(
    OP,
    `head dim D = ${D} is too large for the WebGPU backward (workgroup memory ${lim.maxComputeWorkgroupStorageSize} bytes); use impl: 'reference'`,
  );
}

const GATE_ID: Record<Gate, number> = { kv: 0, v: 1, logit: 2 };

/** `fn <fn>4(i, x)`: buf[i + c] += x.c for c < `n` (4 loads, 4 exchanges, then the retry loops). */
function atomicAdd4(buf: string, fn: string, n: number): string {
  const cs = range(n);
  return `${atomicAddF32(buf, fn)}
fn ${fn}4(i: u32, x: vec4<f32>) {
${lines(n, (c) => `  let o${c} = atomicLoad(&${buf}[i + ${c}u]);`)}
${lines(n, (c) => `  let r${c} = atomicCompareExchangeWeak(&${buf}[i + ${c}u], o${c}, bitcast<u32>(bitcast<f32>(o${c}) + x.${comp[c]}));`)}
${cs.map((c) => `  if (!r${c}.exchanged) { ${fn}(i + ${c}u, x.${comp[c]}); }`).join('\n')}
}`;
}

/**
 * The kernel for block shape `c`, head dim `D` and `gate` (a compile-time constant), or, `gate:
 * 'uniform'`, the gate from the uniform `P.gate` (0 kv, 1 v, 2 logit): one pipeline for all three
 * where compiling is slow (software adapters).
 */
export function sparsekBackwardWGSL(c: SkBwdConfig, D: number, gate: Gate | 'uniform'): string {
  const DV = vec4Groups(D);
  const layout: RowLayout = { D };
  const npq = c.nt / c.bq;
  const npk = c.nt / c.bk;
  const ndq = Math.ceil(DV / npq);
  const ndk = Math.ceil(DV / npk);
  const ncq = c.bq / c.tm;
  const nck = c.bk / c.tn;
  const mn = range(c.tm).flatMap((m) => range(c.tn).map((n) => [m, n] as const));
  // the last vec4 group of a row may be partial when D is not a multiple of 4
  const tail = D % 4;
  const add4 = (fn: string, idx: string, x: string, cexpr: string) =>
    tail === 0 ? `${fn}4(${idx}, ${x});` : `if (${cexpr} + 1u < DV) { ${fn}4(${idx}, ${x}); } else { ${fn}T(${idx}, ${x}); }`;
  const tailFn = (fn: string) =>
    tail === 0 ? '' : `\nfn ${fn}T(i: u32, x: vec4<f32>) {\n${lines(tail, (k) => `  ${fn}(i + ${k}u, x.${comp[k]});`)}\n}`;
  return `${gate === 'uniform' ? '' : `const GATE = ${GATE_ID[gate]}u;\n`}const BQ = ${c.bq}u;
const BK = ${c.bk}u;
const NT = ${c.nt}u;
const DV = ${DV}u;
const NW = ${Math.ceil(c.nt / 32)}u;
const SENT = 0xffffffffu;

var<workgroup> Qs: array<vec4<f32>, ${c.bq * DV}>;
var<workgroup> dOs: array<vec4<f32>, ${c.bq * DV}>;
// key rows, vec4 group c of row kk at kk·DV + (c + kk) % DV (rotated: no bank conflicts across rows)
var<workgroup> Ks: array<vec4<f32>, ${c.bk * DV}>;
var<workgroup> Vs: array<vec4<f32>, ${c.bk * DV}>;
var<workgroup> dSk: array<f32, ${c.bq * c.bk}>;
var<workgroup> Pv: array<f32, ${c.bq * c.bk}>;
var<workgroup> Gs: array<f32, ${c.bq * c.bk}>;
var<workgroup> cbuf: array<u32, ${c.nt + c.bk}>;
var<workgroup> cmask: array<atomic<u32>, NW>;
var<workgroup> ncand: u32;
var<workgroup> qlse: array<f32, BQ>;
var<workgroup> qtau: array<f32, BQ>;
var<workgroup> qdel: array<f32, BQ>;
var<workgroup> qmean: array<f32, BQ>;
var<workgroup> jpos: array<u32, BK>;
var<workgroup> ju: array<f32, BK>;

var<private> dqa: array<vec4<f32>, ${ndq}>;
var<private> gsum: f32;
var<private> gcnt: f32;

${rowAccessor(layout, 'q', 'P.T', 'ldq', false)}
${rowAccessor(layout, 'k', 'P.T', 'ldk', false)}
${rowAccessor(layout, 'v', 'P.T', 'ldv', false)}
${rowAccessor(layout, 'dout', 'P.T', 'lddo', false)}
${rowAccessor(layout, 'o', 'P.T', 'ldo', false)}
${rowAccessor(layout, 'dq', 'P.T', 'stq', true)}
${atomicAdd4('dk', 'addK', Math.min(4, D))}${tailFn('addK')}
${atomicAdd4('dv', 'addV', Math.min(4, D))}${tailFn('addV')}
${atomicAddF32('du', 'addU')}

fn uAt(b: u32, h: u32, j: u32) -> f32 { return u[(b * P.T + j) * P.H + h + P.u_offset]; }

/** Pair (i, j) with u_j and τ_i: 0 not attended, 1 window, 2 selected with gate 1, 3 selected fractional. */
fn cls(i: u32, j: u32, uj: f32, t: f32) -> u32 {
  if (i >= P.T || j == SENT || j > i) { return 0u; }
  if (j + P.W > i) { return 1u; }
  let d = uj - t;
  if (!(d > 0.0)) { return 0u; }
  if (d < 1.0) { return 3u; }
  return 2u;
}

/**
 * The terms of one attended pair (class cl, gate g, q·k, dO·v): dS·∂s/∂(q·k) (for dq and dk), the
 * value weight (for dv) and, for fractional pairs, the gate gradient G.
 */
fn pair(cl: u32, g: f32, dqk: f32, dov: f32, lse_i: f32, del_i: f32, dsk: ptr<function, f32>, pv: ptr<function, f32>, gg: ptr<function, f32>) {
  let gate = ${gate === 'uniform' ? 'P.gate' : 'GATE'};
  if (gate == 0u) {
    // 'kv': s = scale·g·q·k, value g·v
    let p = exp(P.scale * g * dqk - lse_i);
    let ds = p * (g * dov - del_i);
    *dsk = ds * P.scale * g;
    *pv = p * g;
    if (cl == 3u) { *gg = ds * P.scale * dqk + p * dov; }
  } else if (gate == 1u) {
    // 'v': s = scale·q·k, value g·v
    let p = exp(P.scale * dqk - lse_i);
    let ds = p * (g * dov - del_i);
    *dsk = ds * P.scale;
    *pv = p * g;
    if (cl == 3u) { *gg = p * dov; }
  } else {
    // 'logit': s = scale·q·k + log g, value v
    let p = exp(P.scale * dqk + log(g) - lse_i);
    let ds = p * (dov - del_i);
    *dsk = ds * P.scale;
    *pv = p;
    if (cl == 3u) { *gg = ds / g; }
  }
}

/** One tile of BK keys jpos[·] (SENT: none) against the block's queries. */
fn tile(b: u32, h: u32, i0: u32, lid: u32) {
  workgroupBarrier();
  for (var x = lid; x < BK * DV; x += NT) {
    let kk = x / DV;
    let c = x % DV;
    let j = jpos[kk];
    var kx = vec4<f32>(0.0);
    var vx = vec4<f32>(0.0);
    if (j != SENT) { kx = ldk(b, j, h, c); vx = ldv(b, j, h, c); }
    let s = kk * DV + (c + kk) % DV;
    Ks[s] = kx;
    Vs[s] = vx;
  }
  if (lid < BK) {
    let j = jpos[lid];
    var uu = 0.0;
    if (j != SENT) { uu = uAt(b, h, j); }
    ju[lid] = uu;
  }
  workgroupBarrier();
  {
    let qa = lid / ${nck}u;
    let ka = lid % ${nck}u;
${mn.map(([m, n]) => `    var sq${m}${n} = 0.0;\n    var sv${m}${n} = 0.0;`).join('\n')}
    for (var c = 0u; c < DV; c++) {
${lines(c.tm, (m) => `      let q${m} = Qs[(qa + ${m * ncq}u) * DV + c];\n      let o${m} = dOs[(qa + ${m * ncq}u) * DV + c];`)}
${lines(c.tn, (n) => `      let kk${n} = ka + ${n * nck}u;\n      let s${n} = kk${n} * DV + (c + kk${n}) % DV;\n      let k${n} = Ks[s${n}];\n      let v${n} = Vs[s${n}];`)}
${mn.map(([m, n]) => `      sq${m}${n} += dot(q${m}, k${n});\n      sv${m}${n} += dot(o${m}, v${n});`).join('\n')}
    }
${mn
  .map(
    ([m, n]) => `    {
      let r = qa + ${m * ncq}u;
      let kk = ka + ${n * nck}u;
      let dqk = sq${m}${n};
      let dov = sv${m}${n};
      let t = qtau[r];
      let uj = ju[kk];
      let cl = cls(i0 + r, jpos[kk], uj, t);
      var g = 1.0;
      if (cl >= 2u) { g = min(uj - t, 1.0); }
      var dsk = 0.0;
      var pv = 0.0;
      var gg = 0.0;
      if (cl != 0u) {
        pair(cl, g, dqk, dov, qlse[r], qdel[r], &dsk, &pv, &gg);
      }
      dSk[r * BK + kk] = dsk;
      Pv[r * BK + kk] = pv;
      Gs[r * BK + kk] = gg;
    }`,
  )
  .join('\n')}
  }
  workgroupBarrier();
  {
    // dq_i += Σ_j dSk_ij k_j (registers); the per-query sums of G over the fractional pairs
    let r = lid / ${npq}u;
    let cg = lid % ${npq}u;
${lines(
  ndq,
  (m) => `    {
      let c = cg + ${m * npq}u;
      if (c < DV) {
        var acc = vec4<f32>(0.0);
        for (var kk = 0u; kk < BK; kk++) { acc += dSk[r * BK + kk] * Ks[kk * DV + (c + kk) % DV]; }
        dqa[${m}] += acc;
      }
    }`,
)}
    if (cg == 0u) {
      for (var kk = 0u; kk < BK; kk++) {
        if (cls(i0 + r, jpos[kk], ju[kk], qtau[r]) == 3u) {
          gsum += Gs[r * BK + kk];
          gcnt += 1.0;
        }
      }
    }
  }
  {
    // dk_j, dv_j: this tile's sums over the block's queries, added atomically; du_j += Σ_i G_ij
    let kk = lid / ${npk}u;
    let cg = lid % ${npk}u;
    let j = jpos[kk];
    if (j != SENT) {
      let rb = ((b * P.T + j) * P.H + h) * ${D}u;
${lines(
  ndk,
  (m) => `      {
        let c = cg + ${m * npk}u;
        if (c < DV) {
          var ak = vec4<f32>(0.0);
          var av = vec4<f32>(0.0);
          for (var r = 0u; r < BQ; r++) {
            ak += dSk[r * BK + kk] * Qs[r * DV + c];
            av += Pv[r * BK + kk] * dOs[r * DV + c];
          }
          ${add4('addK', 'rb + c * 4u', 'ak', 'c')}
          ${add4('addV', 'rb + c * 4u', 'av', 'c')}
        }
      }`,
)}
      if (cg == 0u) {
        var gs = 0.0;
        for (var r = 0u; r < BQ; r++) { gs += Gs[r * BK + kk]; }
        addU((b * P.T + j) * P.H + h, gs);
      }
    }
  }
  workgroupBarrier();
}

/** The first m entries of cbuf become the next tile; the n − m after them move to the front. */
fn take(n: u32, m: u32, lid: u32) {
  if (lid < BK) { jpos[lid] = select(SENT, cbuf[lid], lid < m); }
  var tmp = 0u;
  let moved = n - m;
  if (lid < moved) { tmp = cbuf[lid + m]; }
  workgroupBarrier();
  if (lid < moved) { cbuf[lid] = tmp; }
}

@compute @workgroup_size(${c.nt})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let bh = wid.y;
  let b = bh / P.H;
  let h = bh % P.H;
  let i0 = wid.x * BQ;
  let T = P.T;
  let W = P.W;
  let ilast = min(i0 + BQ, T) - 1u;
  for (var x = lid; x < BQ * DV; x += NT) {
    let i = i0 + x / DV;
    var qx = vec4<f32>(0.0);
    var ox = vec4<f32>(0.0);
    if (i < T) { qx = ldq(b, i, h, x % DV); ox = lddo(b, i, h, x % DV); }
    Qs[x] = qx;
    dOs[x] = ox;
  }
  workgroupBarrier();
  if (lid < BQ) {
    let i = i0 + lid;
    var l = 0.0;
    var t = 0.0;
    var dl = 0.0;
    if (i < T) {
      l = lse[bh * T + i + P.lse_offset];
      t = tau[bh * T + i + P.tau_offset];
      if (i >= W && is_nan(t)) { l = f32_nan(); }
      for (var c = 0u; c < DV; c++) { dl += dot(ldo(b, i, h, c), dOs[lid * DV + c]); }
    }
    qlse[lid] = l;
    qtau[lid] = t;
    qdel[lid] = dl;
  }
${lines(ndq, (m) => `  dqa[${m}] = vec4<f32>(0.0);`)}
  gsum = 0.0;
  gcnt = 0.0;
  workgroupBarrier();
  // the candidates j ≤ i0 − w with u_j > τ_{i0}, compacted in order into tiles of BK
  if (i0 >= W) {
    let jend = i0 - W + 1u;
    let tF = qtau[0];
    var n = 0u;
    for (var base = 0u; base < jend; base += NT) {
      if (lid < NW) { atomicStore(&cmask[lid], 0u); }
      workgroupBarrier();
      let j = base + lid;
      var f = false;
      if (j < jend) { f = uAt(b, h, j) > tF; }
      if (f) { atomicOr(&cmask[lid / 32u], 1u << (lid % 32u)); }
      workgroupBarrier();
      if (f) {
        var rank = countOneBits(atomicLoad(&cmask[lid / 32u]) & ((1u << (lid % 32u)) - 1u));
        for (var w = 0u; w < lid / 32u; w++) { rank += countOneBits(atomicLoad(&cmask[w])); }
        cbuf[n + rank] = j;
      }
      if (lid == 0u) {
        var tot = 0u;
        for (var w = 0u; w < NW; w++) { tot += countOneBits(atomicLoad(&cmask[w])); }
        ncand = n + tot;
      }
      n = workgroupUniformLoad(&ncand);
      while (n >= BK) {
        take(n, BK, lid);
        tile(b, h, i0, lid);
        n -= BK;
      }
    }
    if (n > 0u) {
      take(n, n, lid);
      tile(b, h, i0, lid);
    }
  }
  // the contiguous range max(0, i0 − w + 1) … i_last (window keys, and older ones for later queries)
  let js = select(0u, i0 + 1u - W, i0 + 1u > W);
  for (var jb = js; jb <= ilast; jb += BK) {
    if (lid < BK) {
      let j = jb + lid;
      jpos[lid] = select(SENT, j, j <= ilast);
    }
    tile(b, h, i0, lid);
  }
  {
    let r = lid / ${npq}u;
    let cg = lid % ${npq}u;
    let i = i0 + r;
    if (i < T) {
      let bad = is_nan(qlse[r]);
${lines(
  ndq,
  (m) => `      {
        let c = cg + ${m * npq}u;
        if (c < DV) { stq(b, i, h, c, select(dqa[${m}], vec4<f32>(f32_nan()), bad)); }
      }`,
)}
    }
    if (cg == 0u) { qmean[r] = select(0.0, gsum / max(gcnt, 1.0), gcnt > 0.0); }
  }
  workgroupBarrier();
  // du_j −= Σ_i mean_i over the block's queries i with j fractional in m_i
  let iF = max(i0, W);
  if (iF <= ilast) {
    let r0 = iF - i0;
    let tF = qtau[r0];
    let jend = ilast - W + 1u;
    for (var j = lid; j < jend; j += NT) {
      let uj = uAt(b, h, j);
      if (uj > tF) {
        var acc = 0.0;
        for (var r = r0; r < BQ; r++) {
          if (cls(i0 + r, j, uj, qtau[r]) == 3u) { acc += qmean[r]; }
        }
        addU((b * P.T + j) * P.H + h, -acc);
      }
    }
  }
}
`;
}

function checkInput(name: string, x: Tensor, shape: readonly number[], backend: WebGPUBackend): void {
  if (x.backend !== backend) fail(OP, `backward input ${name} lives on the ${x.backend.name} backend, not on WebGPU`);
  if (x.dtype !== 'float32')
    fail(OP, `the WebGPU kernels take float32, got ${name} ${x.dtype}${fmtShape(x.shape)} (float64 runs on the CPU)`);
  if (x.rank !== shape.length || x.shape.some((d, i) => d !== shape[i]))
    fail(OP, `backward input ${name} must have shape ${fmtShape(shape)}, got ${fmtShape(x.shape)}`);
}

/**
 * Gradients `dq, dk, dv [B,T,H,D]`, `du [B,T,H]` (float32 WebGPU tensors) of SPARSEK attention
 * from the inputs, the incoming gradient `dO`, the output `o` and the forward's `lse, tau [B,H,T]`.
 * `cfg` overrides the block shape (tests).
 */
export function sparsekAttnBackwardWebGPU(backend: WebGPUBackend, t: SkBackwardInputs, a: SkAttrs, cfg?: SkBwdConfig): SkBackwardGrads {
  const { B, T, H, D } = a.dims;
  const rows = [B, T, H, D];
  for (const name of ['q', 'k', 'v', 'dO', 'o'] as const) checkInput(name, t[name], rows, backend);
  checkInput('u', t.u, [B, T, H], backend);
  checkInput('lse', t.lse, [B, H, T], backend);
  checkInput('tau', t.tau, [B, H, T], backend);
  const zeros = (shape: number[]) => tensor(new Float32Array(shape.reduce((n, d) => n * d, 1)), shape, { dtype: 'float32', backend });
  if (B * T * H * D === 0) return { dq: zeros(rows), dk: zeros(rows), dv: zeros(rows), du: zeros([B, T, H]) };
  const lim = backend.device.limits;
  if (lim.maxStorageBuffersPerShaderStage < 12)
    fail(
      OP,
      `the WebGPU device allows ${lim.maxStorageBuffersPerShaderStage} storage buffers per stage; the backward needs 12 (use impl: 'reference')`,
    );
  const c = cfg ?? pickConfig(backend, D);
  checkConfig(c);
  const nqb = Math.ceil(T / c.bq);
  if (B * H > 65535 || nqb > 65535)
    fail(OP, `B·H = ${B * H} and ⌈T/${c.bq}⌉ = ${nqb} must each be at most 65535 (one workgroup per query block and head)`);
  const layout: RowLayout = { D };
  const temps: Tensor[] = [];
  const inputs: KernelInput[] = [
    rowInput('q', t.q, layout, temps),
    rowInput('k', t.k, layout, temps),
    rowInput('v', t.v, layout, temps),
    rowInput('dout', t.dO, layout, temps),
    rowInput('o', t.o, layout, temps),
    { name: 'u', data: t.u },
    { name: 'lse', data: t.lse },
    { name: 'tau', data: t.tau },
  ];
  // software adapters compile slowly: one pipeline for the three gates there
  const gate = backend.software ? 'uniform' : a.gate;
  const code = cachedWGSL('sparsek-attn-bwd', [c, D, gate, vec4Rows(layout)], () => sparsekBackwardWGSL(c, D, gate));
  const [dq, dk, dv, du] = backend.runKernelTensors({
    name: 'sparsek_attention_backward',
    code,
    inputs,
    outputs: [
      { name: 'dq', shape: rows, dtype: 'float32', elem: rowElem(layout) },
      { name: 'dk', shape: rows, dtype: 'float32', zero: true, elem: 'atomic<u32>' },
      { name: 'dv', shape: rows, dtype: 'float32', zero: true, elem: 'atomic<u32>' },
      { name: 'du', shape: [B, T, H], dtype: 'float32', zero: true, elem: 'atomic<u32>' },
    ],
    uniforms: {
      u32: { T, H, W: Math.min(a.window, T), ...(gate === 'uniform' ? { gate: GATE_ID[a.gate] } : {}) },
      f32: { scale: a.scale },
    },
    workgroups: [nqb, B * H],
  });
  for (const x of temps) x.dispose();
  return { dq, dk, dv, du };
}
