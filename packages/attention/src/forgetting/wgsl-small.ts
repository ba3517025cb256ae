/**
 * The small WGSL kernels around the fused attention kernels (`wgsl-tiled.ts`, `wgsl-wide.ts`): the ACP
 * bounds scan, δ = Σ o·dO, and the dlogF reverse scan. Bindings and uniforms come from the
 * backend's `runKernel` (see `webgpu.ts`).
 */

// ---------------------------------------------------------------------------------------------
// ACP bounds

/**
 * One thread per (b, h): the monotone two-pointer scans of `acpFirstBlocks` on the 64×64 grid.
 * Inputs `lam [B,Tk,H]` (Λ) and `dlt [B·H]` (δ).
 * Writes `first[bh, qb]` (first kept key tile), `lastq[bh, kb]` (last query tile keeping key tile
 * kb, −1 if none) and `count[bh]` (64×64 tiles computed; `window`: without the tiles wholly
 * before the sliding window `P.win` of the query tile's first query).
 */
export function acpBoundsWGSL(window = false): string {
  return `fn lamAt(b: u32, t: u32, h: u32) -> f32 { return lam[(b * P.Tk + t) * P.H + h + P.lam_offset]; }

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let bh = gid.x;
  if (bh >= P.BH) { return; }
  let b = bh / P.H;
  let h = bh % P.H;
  let off = P.Tk - P.Tq;
  let d = dlt[bh + P.dlt_offset];
  var kb = 0u;
  var n = 0u;
  for (var qb = 0u; qb < P.nqb64; qb++) {
    let p0 = qb * 64u + off;
    let diag = p0 / 64u;
    let lq = lamAt(b, p0, h);
    loop {
      if (kb >= diag) { break; }
      if (!(lq - lamAt(b, min((kb + 1u) * 64u, P.Tk) - 1u, h) < d)) { break; }
      kb++;
    }
    first[bh * P.nqb64 + qb] = i32(kb);
    let last = (min((qb + 1u) * 64u, P.Tq) - 1u + off) / 64u;
${window ? '    let wf = select(0u, (p0 + 1u - P.win) / 64u, p0 + 1u > P.win);\n    n += last - max(kb, wf) + 1u;' : '    n += last - kb + 1u;'}
  }
  count[bh] = n;
  var qb2 = -1;
  for (var k2 = 0u; k2 < P.nkb64; k2++) {
    loop {
      if (qb2 + 1 >= i32(P.nqb64)) { break; }
      if (first[bh * P.nqb64 + u32(qb2 + 1)] > i32(k2)) { break; }
      qb2++;
    }
    lastq[bh * P.nkb64 + k2] = qb2;
  }
}
`;
}

// ---------------------------------------------------------------------------------------------
// δ

/**
 * `delta[row] = Σ_d o[row, d]·dO[row, d]` over the `rows = B·Tq·H` rows of length `Dr`: 16
 * threads per row (coalesced, each summing every 16th element), then a 16-lane tree in workgroup
 * memory; 16 rows per workgroup on a folded grid.
 */
export function foxDeltaWGSL(): string {
  return `var<workgroup> sh: array<f32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wg_linear(wid, nwg) * 16u + lid / 16u;
  let lane = lid % 16u;
  var s = 0.0;
  if (row < P.rows) {
    for (var c = lane; c < P.Dr; c += 16u) {
      s += o[row * P.Dr + c + P.o_offset] * dout[row * P.Dr + c + P.dout_offset];
    }
  }
  sh[lid] = s;
  workgroupBarrier();
  for (var w = 8u; w > 0u; w >>= 1u) {
    if (lane < w) { sh[lid] += sh[lid + w]; }
    workgroupBarrier();
  }
  if (lane == 0u && row < P.rows) { delta[row] = sh[lid]; }
}
`;
}

// ---------------------------------------------------------------------------------------------
// dlogF

/**
 * `dlogF_t = Σ_{s ≥ t} (rowsum_{s−off} − colsum_s)` (rowsum left out when `rows` is false: it is 0
 * up to rounding) as a reverse scan, one workgroup of 256 threads per (b, h): each thread sums a
 * contiguous chunk with Kahan compensation, the chunk totals are suffix-scanned in workgroup
 * memory, then each thread rescans its chunk from the later chunks' total (compensated again: the
 * sum cancels to ~0 at t = 0, so plain float32 accumulation over long sequences would lose the
 * small values). Inputs `rowsum [B,Tq,H]`, `colsum [B,Tk,H]`; output `dlogf [B,Tk,H]`; grid [B·H].
 */
export function foxDlogfWGSL(rows: boolean): string {
  return `var<workgroup> tot: array<f32, 256>;
fn term(b: u32, t: u32, h: u32, off: u32) -> f32 {
  var x = -colsum[(b * P.Tk + t) * P.H + h + P.colsum_offset];
${rows ? '  if (t >= off) { x += rowsum[(b * P.Tq + t - off) * P.H + h + P.rowsum_offset]; }\n' : ''}  return x;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let bh = wid.x;
  let b = bh / P.H;
  let h = bh % P.H;
  let off = P.Tk - P.Tq;
  let L = (P.Tk + 255u) / 256u;
  let t0 = min(lid * L, P.Tk);
  let t1 = min(t0 + L, P.Tk);
  var s = 0.0;
  var c = 0.0;
  for (var t = t0; t < t1; t++) {
    let y = term(b, t, h, off) - c;
    let u = s + y;
    c = (u - s) - y;
    s = u;
  }
  tot[lid] = s;
  workgroupBarrier();
  for (var o = 1u; o < 256u; o <<= 1u) {
    var v = 0.0;
    if (lid + o < 256u) { v = tot[lid + o]; }
    workgroupBarrier();
    tot[lid] += v;
    workgroupBarrier();
  }
  var acc = 0.0;
  if (lid < 255u) { acc = tot[lid + 1u]; }
  c = 0.0;
  for (var n = t1; n > t0; n--) {
    let t = n - 1u;
    let y = term(b, t, h, off) - c;
    let u = acc + y;
    c = (u - acc) - y;
    acc = u;
    dlogf[(b * P.Tk + t) * P.H + h] = acc;
  }
}
`;
}
