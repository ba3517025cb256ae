/**
 * WGSL kernels of SPARSEK, one workgroup of 64 or 256 threads per row (rows on a folded grid). Bindings
 * and the uniform block `P` come from the backend's `runKernel`. The forward does the bisection of
 * `project.ts` in the kernel: every pass reduces `f(mid) = Σ clip(z − mid, 0, 1)` and the numbers of
 * breakpoints (`z_i`, `z_i − 1`) strictly inside each half of the bracket over the workgroup; thread
 * 0 updates the bracket, and the loop ends (for all threads, through `workgroupUniformLoad`) when
 * the kept half holds no breakpoint, then τ is solved exactly on that linear piece. Arithmetic is
 * float32; `f(mid)` is compared with k after a tree sum, so a pass within the sum's rounding of the
 * root may keep the wrong half: the piece's linear formula then still gives τ to within that
 * rounding (the neighbouring piece differs from it only beyond the breakpoint).
 */

export const SPARSEK_MAX_BISECT = 200;

/** Threads per workgroup (one row each): 64 for rows of ≤ 64 entries, else 256. */
export function sparsekThreads(m: number): number {
  return m <= 64 ? 64 : 256;
}

const reduceCode = (SPARSEK_WG: number) => `var<workgroup> ra: array<f32, ${SPARSEK_WG}>;
var<workgroup> rb: array<f32, ${SPARSEK_WG}>;
var<workgroup> rc: array<u32, ${SPARSEK_WG}>;
var<workgroup> rd: array<u32, ${SPARSEK_WG}>;

// tree sums of ra, rb, rc, rd into element 0 (ends with a barrier: every thread may read [0])
fn reduce_sum(lid: u32) {
  workgroupBarrier();
  for (var w = ${SPARSEK_WG / 2}u; w > 0u; w >>= 1u) {
    if (lid < w) {
      ra[lid] += ra[lid + w];
      rb[lid] += rb[lid + w];
      rc[lid] += rc[lid + w];
      rd[lid] += rd[lid + w];
    }
    workgroupBarrier();
  }
}
`;

/**
 * Inputs `z [R,m]` (f32) and `kk [R]` (the budget per row, f32); output `p [R,m]`. Uniforms `m`.
 * A row with a non-finite value gives NaN; `k ≥ m` gives ones.
 */
export function sparsekForwardWGSL(SPARSEK_WG: number): string {
  return `${reduceCode(SPARSEK_WG)}
var<workgroup> lo_s: f32;
var<workgroup> hi_s: f32;
var<workgroup> tau_s: f32;
var<workgroup> state: u32; // 0 bisect, 1 solve, 2 all ones, 3 NaN

fn reduce_minmax(lid: u32) {
  workgroupBarrier();
  for (var w = ${SPARSEK_WG / 2}u; w > 0u; w >>= 1u) {
    if (lid < w) {
      ra[lid] = min(ra[lid], ra[lid + w]);
      rb[lid] = max(rb[lid], rb[lid + w]);
      rc[lid] = max(rc[lid], rc[lid + w]);
    }
    workgroupBarrier();
  }
}

@compute @workgroup_size(${SPARSEK_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wg_linear(wid, nwg);
  if (row >= P.num_wg) { return; }
  let m = P.m;
  let zb = row * m + P.z_offset;
  let pb = row * m;
  var mn = f32_inf();
  var mx = -f32_inf();
  var bad = 0u;
  for (var c = lid; c < m; c += ${SPARSEK_WG}u) {
    let x = z[zb + c];
    if (is_nan(x) || abs(x) > 3.4e38) { bad = 1u; } else { mn = min(mn, x); mx = max(mx, x); }
  }
  ra[lid] = mn;
  rb[lid] = mx;
  rc[lid] = bad;
  reduce_minmax(lid);
  if (lid == 0u) {
    let k = kk[row + P.kk_offset];
    if (rc[0] != 0u) { state = 3u; }
    else if (k >= f32(m)) { state = 2u; }
    else { lo_s = ra[0] - 1.0; hi_s = rb[0]; state = 0u; }
  }
  var st = workgroupUniformLoad(&state);
  var it = 0u;
  loop {
    if (st != 0u) { break; }
    let lo = lo_s;
    let hi = hi_s;
    let mid = 0.5 * (lo + hi);
    var f = 0.0;
    var nl = 0u;
    var nr = 0u;
    for (var c = lid; c < m; c += ${SPARSEK_WG}u) {
      let x = z[zb + c];
      f += clamp(x - mid, 0.0, 1.0);
      let y = x - 1.0;
      if (x > lo && x < hi) { if (x < mid) { nl++; } else if (x > mid) { nr++; } }
      if (y > lo && y < hi) { if (y < mid) { nl++; } else if (y > mid) { nr++; } }
    }
    ra[lid] = f;
    rb[lid] = 0.0;
    rc[lid] = nl;
    rd[lid] = nr;
    reduce_sum(lid);
    if (lid == 0u) {
      let k = kk[row + P.kk_offset];
      let fm = ra[0];
      if (!(mid > lo && mid < hi) || it >= ${SPARSEK_MAX_BISECT}u) { state = 1u; }
      else if (fm > k) { lo_s = mid; if (rd[0] == 0u) { state = 1u; } }
      else if (fm < k) { hi_s = mid; if (rc[0] == 0u) { state = 1u; } }
      else { lo_s = mid; hi_s = mid; state = 1u; }
    }
    it++;
    st = workgroupUniformLoad(&state);
  }
  if (st == 1u) {
    let lo = lo_s;
    let hi = hi_s;
    var s = 0.0;
    var ns = 0u;
    var nu = 0u;
    for (var c = lid; c < m; c += ${SPARSEK_WG}u) {
      let x = z[zb + c];
      if (x > lo) {
        if (x - 1.0 >= hi) { nu++; } else { s += x - lo; ns++; }
      }
    }
    ra[lid] = s;
    rb[lid] = 0.0;
    rc[lid] = ns;
    rd[lid] = nu;
    reduce_sum(lid);
    if (lid == 0u) {
      let k = kk[row + P.kk_offset];
      if (rc[0] == 0u) { tau_s = 0.5 * (lo + hi); }
      else { tau_s = lo + (ra[0] + f32(rd[0]) - k) / f32(rc[0]); }
    }
  }
  let tau = workgroupUniformLoad(&tau_s);
  for (var c = lid; c < m; c += ${SPARSEK_WG}u) {
    var v = 1.0;
    if (st == 3u) { v = f32_nan(); }
    else if (st == 1u) { v = clamp(z[zb + c] - tau, 0.0, 1.0); }
    p[pb + c] = v;
  }
}
`;
}

/**
 * Inputs `p [R,m]`, `g [R,m]`; output `dz [R,m] = s·(g − mean_S g)`, `S = {0 < p < 1}`. Uniforms `m`.
 */
export function sparsekBackwardWGSL(SPARSEK_WG: number): string {
  return `${reduceCode(SPARSEK_WG)}
@compute @workgroup_size(${SPARSEK_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wg_linear(wid, nwg);
  if (row >= P.num_wg) { return; }
  let m = P.m;
  let pb = row * m + P.p_offset;
  let gb = row * m + P.g_offset;
  var s = 0.0;
  var n = 0u;
  for (var c = lid; c < m; c += ${SPARSEK_WG}u) {
    let v = p[pb + c];
    if (v > 0.0 && v < 1.0) { s += g[gb + c]; n++; }
  }
  ra[lid] = s;
  rb[lid] = 0.0;
  rc[lid] = n;
  rd[lid] = 0u;
  reduce_sum(lid);
  let cnt = rc[0];
  var mean = 0.0;
  if (cnt > 0u) { mean = ra[0] / f32(cnt); }
  for (var c = lid; c < m; c += ${SPARSEK_WG}u) {
    let v = p[pb + c];
    var d = 0.0;
    if (v > 0.0 && v < 1.0) { d = g[gb + c] - mean; }
    dz[row * m + c] = d;
  }
}
`;
}
