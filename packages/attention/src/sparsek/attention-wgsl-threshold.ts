/**
 * The τ kernel of SPARSEK attention on WebGPU: the thresholds `τ_i` of the causal prefix
 * projections `m_i = sparsek(u_{0..i−w}, k)`, one workgroup per (b, h), sequential over the prefix
 * entries `e = i − w` (τ_i depends on τ_{i−1}: it is a scan, not a map).
 *
 * State, kept uniform across the workgroup: the active set (the support of the previous query
 * plus the entries added since; an entry with `u ≤ τ` never comes back, as τ never decreases),
 * its count `na`, and τ. The active set lives in workgroup memory up to `cap` entries and in a
 * global scratch buffer sized by T beyond that, so nothing can overflow.
 *
 * - Entries `e < E0 = min(⌊k⌋, T − w)` (prefixes of ≤ k entries) are all gate 1: stored in parallel,
 *   τ = −3.0e38 (the finite sentinel). Queries `i < w` (empty prefix) get the sentinel too.
 * - Then the entries are read in chunks of `nt`, one per thread. A *find* reduction gives the next
 *   entry of the chunk with `u > τ` (every entry in between leaves τ unchanged and is written in
 *   parallel); only such an *entering* entry costs a solve. The solve's last pass also reduces
 *   the first later entry above its evaluation point: when that one is above the new τ too, it is
 *   the next entering entry and the find pass is skipped (the usual case: τ moves little).
 * - Solve (the new τ ≥ τ_{i−1}): a pass over the active set evaluates, at a point x, exactly
 *   `f(x) = Σ clip(u − x, 0, 1)` (a float32 tree or subgroup sum, not an update), the number of
 *   fractional entries on the linear piece right of x, and the next breakpoint above x (u_j − 1 or
 *   u_j). If the piece's root `x + (f(x) − k)/|F|` lies before that breakpoint it is τ; otherwise
 *   x moves up to the breakpoint. The walk starts at τ_{i−1}: each entry's two breakpoints are
 *   crossed at most once over the whole sequence, so the passes per entering entry are O(1)
 *   amortised (one pass when no breakpoint is crossed). After `WALK` walking passes in one step
 *   (e.g. the first projection, which starts from min(u) − 1), the point is the midpoint of the
 *   bracket [lo, max u] instead (bisection whose kept half still jumps to the next breakpoint).
 * - Compaction (dropping `u ≤ τ`) runs when the active set has doubled since the last one.
 *
 * Cost per (b, h): O(T) reads of u, one find pass per chunk, and per entering entry 1 + (breakpoints
 * crossed) solve passes (+1 find pass when the solve did not already give the next entering entry)
 * of O(|active| / nt) work each (|active| ≈ the support: k plus the fractional entries); every pass
 * is a workgroup reduction (a few barriers). Breakpoints are crossed at most twice per entry over
 * the sequence, so at worst (every entry enters, e.g. scores growing with the position) ≈ 3
 * reductions per position, sequential in T; with scores in random order only ≈ k·(1 + ln(T/k))
 * entries enter.
 *
 * Also written: the list of entering entries of each (b, h) in position order (`selp`
 * positions, `selu` scores, `nsel` their count): every position that any query selects is in it,
 * so the forward kernel scans this list, not all of u, for its candidates.
 *
 * Non-finite scores: an entering NaN or ±∞ (they always enter) makes τ NaN for that query and
 * every later one, as in the CPU kernel; inside the first E0 entries (gate 1 for all) it makes the
 * first projection of more than k entries NaN.
 */

export interface SkTauConfig {
  /** Threads per workgroup (a power of two). */
  nt: number;
  /** Active-set entries held in workgroup memory (the rest spill to the global scratch). */
  cap: number;
  /** Subgroup reductions (`subgroupAdd` / `subgroupMin` / `subgroupExclusiveAdd`); else workgroup-memory trees. */
  sg: boolean;
}

/** The sentinel τ for queries whose prefix is empty or has ≤ k entries (all gates 1). */
export const TAU_SENTINEL = -3.0e38;

/** Shared WGSL: `red4` (sum, sum, min, max of a vec4 into thread 0) and `scan` (exclusive prefix of a u32). */
export function workgroupReductions(nt: number, sg: boolean): string {
  const np = sg ? Math.max(1, nt / 4) : nt;
  const comb = `fn comb4(a: vec4<f32>, b: vec4<f32>) -> vec4<f32> { return vec4<f32>(a.x + b.x, a.y + b.y, min(a.z, b.z), max(a.w, b.w)); }`;
  if (sg) {
    return `var<workgroup> rp: array<vec4<f32>, ${np}>;
var<workgroup> rs: array<u32, ${np}>;
${comb}
// (Σ x, Σ y, min z, max w) over the workgroup, valid in thread 0
fn red4(v: vec4<f32>, lid: u32, sgl: u32, sgid: u32, nsg: u32) -> vec4<f32> {
  let s = vec4<f32>(subgroupAdd(v.x), subgroupAdd(v.y), subgroupMin(v.z), subgroupMax(v.w));
  if (sgl == 0u) { rp[sgid] = s; }
  workgroupBarrier();
  var t = s;
  if (lid == 0u) {
    t = rp[0];
    for (var i = 1u; i < nsg; i++) { t = comb4(t, rp[i]); }
  }
  return t;
}
// (exclusive prefix of f, total valid in thread 0); the order is (subgroup, lane)
fn scan(f: u32, lid: u32, sgl: u32, sgid: u32, nsg: u32) -> vec2<u32> {
  let ex = subgroupExclusiveAdd(f);
  let tot = subgroupAdd(f);
  if (sgl == 0u) { rs[sgid] = tot; }
  workgroupBarrier();
  var base = 0u;
  for (var i = 0u; i < sgid; i++) { base += rs[i]; }
  var all = 0u;
  if (lid == 0u) { for (var i = 0u; i < nsg; i++) { all += rs[i]; } }
  return vec2<u32>(base + ex, all);
}
`;
  }
  return `var<workgroup> rp: array<vec4<f32>, ${np}>;
var<workgroup> rs: array<u32, ${np}>;
${comb}
fn red4(v: vec4<f32>, lid: u32, sgl: u32, sgid: u32, nsg: u32) -> vec4<f32> {
  rp[lid] = v;
  for (var s = ${nt / 2}u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (lid < s) { rp[lid] = comb4(rp[lid], rp[lid + s]); }
  }
  return rp[0];
}
fn scan(f: u32, lid: u32, sgl: u32, sgid: u32, nsg: u32) -> vec2<u32> {
  rs[lid] = f;
  for (var o = 1u; o < ${nt}u; o <<= 1u) {
    workgroupBarrier();
    var v = 0u;
    if (lid >= o) { v = rs[lid - o]; }
    workgroupBarrier();
    rs[lid] += v;
  }
  workgroupBarrier();
  return vec2<u32>(rs[lid] - f, rs[${nt - 1}u]);
}
`;
}

/** Entry-point builtins for the reductions (subgroup ones only with `sg`). */
export function reductionArgs(sg: boolean): { params: string; locals: string } {
  return sg
    ? {
        params: ', @builtin(subgroup_invocation_id) sgl: u32, @builtin(subgroup_id) sgid: u32, @builtin(num_subgroups) nsg: u32',
        locals: '',
      }
    : { params: '', locals: '  let sgl = 0u;\n  let sgid = 0u;\n  let nsg = 1u;\n' };
}

export function sparsekTauWGSL(c: SkTauConfig): string {
  const { nt, cap, sg } = c;
  const args = reductionArgs(sg);
  return `${sg ? 'enable subgroups;\ndiagnostic(off, subgroup_uniformity);\n' : ''}
const NT = ${nt}u;
const CAP = ${cap}u;
const SENT = ${TAU_SENTINEL.toExponential()};
const BIG = 3.0e38;
const WALK = 6u;
const MAXIT = 200u;

struct Ctl { a: u32, b: u32, x: f32, y: f32, z: f32 }
var<workgroup> act: array<f32, CAP>;
var<workgroup> cu: array<f32, NT>;
var<workgroup> ctl: Ctl;
${workgroupReductions(nt, sg)}
fn aget(base: u32, a: u32) -> f32 {
  if (a < CAP) { return act[a]; }
  return scr[base + a - CAP];
}
fn aset(base: u32, a: u32, x: f32) {
  if (a < CAP) { act[a] = x; } else { scr[base + a - CAP] = x; }
}
fn bad(x: f32) -> bool { return is_nan(x) || abs(x) > 3.4e38; }

@compute @workgroup_size(${nt})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32${args.params}) {
${args.locals}  let bh = wg_linear(wid, nwg);
  if (bh >= P.num_wg) { return; }
  let b = bh / P.H;
  let h = bh % P.H;
  let T = P.T;
  let w = P.w;
  let Tp = P.Tp;
  let k = P.kk;
  let tb = bh * T;
  let lb = bh * P.Ls;
  let sb = bh * P.Ss;
  for (var i = lid; i < min(w, T); i += NT) { tau[tb + i] = SENT; }

  // prefixes of ≤ k entries: every gate 1
  var mn = BIG;
  var mx = -BIG;
  var nbad = 0.0;
  for (var e = lid; e < P.E0; e += NT) {
    let x = u[(b * T + e) * P.H + h + P.u_offset];
    aset(sb, e, x);
    selp[lb + e] = e;
    selu[lb + e] = x;
    tau[tb + e + w] = SENT;
    if (bad(x)) { nbad += 1.0; } else { mn = min(mn, x); mx = max(mx, x); }
  }
  let r0 = red4(vec4<f32>(nbad, 0.0, mn, mx), lid, sgl, sgid, nsg);
  if (lid == 0u) { ctl = Ctl(select(0u, 1u, r0.x > 0.0), 0u, r0.z, r0.w, 0.0); }
  let c0 = workgroupUniformLoad(&ctl);
  var poison = c0.a;
  var mnv = c0.x;
  var mxv = c0.y;
  var na = P.E0;
  var nsel = P.E0;
  var tcur = SENT;
  if (poison != 0u) { tcur = f32_nan(); }
  var ncomp = na + max(na, NT);

  for (var ch = P.E0; ch < Tp; ch += NT) {
    let e = ch + lid;
    var x = 0.0;
    if (e < Tp) { x = u[(b * T + e) * P.H + h + P.u_offset]; }
    cu[lid] = x;
    var p = 0u;
    // the next entering entry when the last solve found it (NT: none left; NT + 1: unknown)
    var known = NT + 1u;
    var knownx = 0.0;
    loop {
      var nx = known;
      var xs = knownx;
      if (known > NT) {
        // the next entering entry (u > τ, or non-finite) at chunk index ≥ p
        var cand = BIG;
        if (e < Tp && lid >= p && poison == 0u && (!(x <= tcur) || bad(x))) { cand = f32(lid); }
        let rf = red4(vec4<f32>(0.0, 0.0, cand, 0.0), lid, sgl, sgid, nsg);
        if (lid == 0u) {
          var n0 = NT;
          var x0 = 0.0;
          if (rf.z < BIG) { n0 = u32(rf.z); x0 = cu[n0]; }
          ctl = Ctl(n0, 0u, x0, 0.0, 0.0);
        }
        let cf = workgroupUniformLoad(&ctl);
        nx = cf.a;
        xs = cf.x;
      }
      known = NT + 1u;
      if (e < Tp && lid >= p && lid < nx) { tau[tb + e + w] = tcur; }
      if (nx >= NT) { break; }
      let es = ch + nx;
      if (lid == na % NT) { aset(sb, na, xs); }
      if (lid == 0u) {
        selp[lb + nsel] = es;
        selu[lb + nsel] = xs;
      }
      na++;
      nsel++;
      p = nx + 1u;
      if (bad(xs)) {
        poison = 1u;
        tcur = f32_nan();
        if (lid == 0u) { tau[tb + es + w] = tcur; }
        continue;
      }
      mnv = min(mnv, xs);
      mxv = max(mxv, xs);
      var xe = tcur;
      if (tcur <= SENT) { xe = mnv - 1.0; }
      // thread 0's bracket [lo, hi] of the root and pass count
      var lo = xe;
      var hi = mxv;
      var it = 0u;
      var pend = BIG;
      loop {
        var f = 0.0;
        var nf = 0.0;
        var bp = BIG;
        for (var a = lid; a < na; a += NT) {
          let y = aget(sb, a);
          let d = y - xe;
          if (d > 0.0) {
            f += min(d, 1.0);
            let y1 = y - 1.0;
            if (y1 > xe) { bp = min(bp, y1); } else { nf += 1.0; bp = min(bp, y); }
          }
        }
        // and the first later entry of the chunk above x: the next entering one if it is above τ too
        var c2 = -BIG;
        if (e < Tp && lid > nx && (!(x <= xe) || bad(x))) { c2 = -f32(lid); }
        let r = red4(vec4<f32>(f, nf, bp, c2), lid, sgl, sgid, nsg);
        if (lid == 0u) {
          it++;
          var done = 0u;
          var t = xe;
          var nxt = xe;
          let pv = pend;
          pend = BIG;
          if (r.x >= k) {
            if (r.y > 0.0) {
              let root = xe + (r.x - k) / r.y;
              if (root < r.z - 1.0e-5 * max(1.0, abs(r.z))) { done = 1u; t = max(root, xe); }
              // a root within rounding of the piece's end: f is checked there (the next piece may be
              // flat, and τ must then not sit on a breakpoint); the root stands if f(end) < k
              else if (root <= r.z) { pend = max(root, xe); }
            } else if (r.x == k) {
              // f is flat (= k) up to the next breakpoint (a hard top-k): τ in the middle, away from every u
              done = 1u;
              if (r.z < BIG) { t = 0.5 * (xe + r.z); }
            }
            if (done == 0u) {
              if (r.z >= BIG) { done = 1u; } else { lo = max(lo, r.z); }
            }
          } else if (xe <= lo) {
            done = 1u;
            t = lo;
            if (pv < BIG) { t = min(pv, lo); }
          } else {
            hi = min(hi, xe);
          }
          if (done == 0u) {
            nxt = lo;
            if (it >= WALK && pend >= BIG) {
              let mid = 0.5 * (lo + hi);
              if (mid > lo && mid < hi) { nxt = mid; }
            }
            if (it >= MAXIT) { done = 1u; t = lo; }
          }
          var kn = NT + 1u;
          var kx = 0.0;
          if (done == 1u && t >= xe) {
            if (r.w <= -BIG) { kn = NT; } else {
              let c = u32(-r.w);
              let y = cu[c];
              if (!(y <= t) || bad(y)) { kn = c; kx = y; }
            }
          }
          ctl = Ctl(done, kn, nxt, t, kx);
        }
        let cs = workgroupUniformLoad(&ctl);
        if (cs.a != 0u) {
          tcur = cs.y;
          known = cs.b;
          knownx = cs.z;
          break;
        }
        xe = cs.x;
      }
      if (lid == 0u) { tau[tb + es + w] = tcur; }
      if (na >= ncomp) {
        // drop the entries at or below τ (in place: an entry only moves down)
        var cnt = 0u;
        for (var a0 = 0u; a0 < na; a0 += NT) {
          let a = a0 + lid;
          var y = 0.0;
          var keep = 0u;
          if (a < na) {
            y = aget(sb, a);
            if (!(y <= tcur)) { keep = 1u; }
          }
          let s = scan(keep, lid, sgl, sgid, nsg);
          if (keep == 1u) { aset(sb, cnt + s.x, y); }
          if (lid == 0u) { ctl = Ctl(s.y, 0u, 0.0, 0.0, 0.0); }
          storageBarrier();
          let cc = workgroupUniformLoad(&ctl);
          cnt += cc.a;
        }
        na = cnt;
        ncomp = na + max(na, NT);
      }
    }
  }
  if (lid == 0u) { nsel_out[bh] = nsel; }
}
`;
}
