import { fail, type KernelInput, type Tensor, type WebGPUBackend } from '@foxgate/tensor';
import type { HeadFusedAttrs } from './head-fused.js';

/*
 * WGSL kernels of `headFused` (float32; the binding `alpha` holds the shift's logits): one workgroup of 64 threads per (head h, sequence b,
 * chunk of CH rows), each thread owning the columns d = lid + 64·j of a row; the per-row sums
 * (Σ s², Σ g⊙w⊙x̂, Σ ds⊙(p − x)) are workgroup reductions, the RoPE partner column comes
 * through workgroup memory. The backward walks its chunk from the last row down, carrying
 * keep·α·ds of the row after (the token shift's coupling), computing that one row after the
 * chunk first; the gain's gradient comes out as per-workgroup partial rows `[B·nch, H, D]`
 * (summed by the caller).
 */

const WG = 64;

/** Rows per workgroup: 32, more when B·⌈T/32⌉ would pass the 65535 workgroups of one grid axis. */
function chunkOf(B: number, T: number): { CH: number; nch: number } {
  let CH = 32;
  while (B * Math.ceil(T / CH) > 65535) CH *= 2;
  return { CH, nch: Math.max(1, Math.ceil(T / CH)) };
}

function prelude(a: HeadFusedAttrs, withX: boolean): string {
  const J = Math.ceil(a.D / WG);
  return `const D: u32 = ${a.D}u;
const J: u32 = ${J}u;
const HALF: u32 = ${Math.floor(a.D / 2)}u;
var<workgroup> red: array<f32, ${WG}>;
var<workgroup> rowbuf: array<f32, ${J * WG}>;
var<private> sv: array<f32, ${J}>;
var<private> pxv: array<f32, ${J}>;
fn wg_sum(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var w = ${WG / 2}u; w > 0u; w >>= 1u) {
    if (lid < w) { red[lid] += red[lid + w]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}
fn sigm(z: f32) -> f32 { return 1.0 / (1.0 + exp(-z)); }
fn widx(h: u32) -> u32 { return ${a.norm === 'head' ? 'h * D' : '0u'}; }
${withX ? loadRow(a) : ''}// the partner of column d under rotate-half: −v[d + half] (d < half) or v[d − half], from rowbuf
fn partner(d: u32, sign: f32) -> f32 {
  if (d < HALF) { return -sign * rowbuf[d + HALF]; }
  return sign * rowbuf[d - HALF];
}
`;
}

function loadRow(a: HeadFusedAttrs): string {
  return `// the shifted row s (and p − x) of row (b, t, h) into sv / pxv
fn load_row(b: u32, t: u32, h: u32, lid: u32) {
  let hd = P.H * D;
  let base = ((b * P.T + t) * P.H + h) * D;
${
  a.shift
    ? `  let al = sigm(alpha[(b * P.T + t) * P.H + h + P.alpha_offset]);
  let kp = ${a.keep ? 'keep[b * P.T + t + P.keep_offset]' : '1.0'};`
    : ''
}
  for (var j = 0u; j < J; j++) {
    let d = lid + j * ${WG}u;
    if (d >= D) { break; }
    let xv = x[base + d + P.x_offset];
${
  a.shift
    ? `    var pv = 0.0;
    if (t > 0u) { pv = x[base - hd + d + P.x_offset]; }${a.prev ? ` else { pv = prev[b * hd + h * D + d + P.prev_offset]; }` : ''}
    pv = kp * pv;
    sv[j] = xv + al * (pv - xv);
    pxv[j] = pv - xv;`
    : '    sv[j] = xv;'
}
  }
}
`;
}

function forwardWGSL(a: HeadFusedAttrs): string {
  const norm = a.norm !== 'none';
  return `${prelude(a, true)}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let h = wid.x;
  let b = wid.y / P.nch;
  let t0 = (wid.y % P.nch) * P.CH;
  let t1 = min(t0 + P.CH, P.T);
  for (var t = t0; t < t1; t++) {
    let row = (b * P.T + t) * P.H + h;
    let base = row * D;
    load_row(b, t, h, lid);
${
  norm
    ? `    var ss = 0.0;
    for (var j = 0u; j < J; j++) { if (lid + j * ${WG}u < D) { ss += sv[j] * sv[j]; } }
    let r = 1.0 / sqrt(wg_sum(ss, lid) / f32(D) + P.eps);
    if (lid == 0u) { rstd[row] = r; }
    for (var j = 0u; j < J; j++) {
      let d = lid + j * ${WG}u;
      if (d < D) { sv[j] = sv[j] * r * w[widx(h) + d + P.w_offset]; }
    }`
    : ''
}
${a.rope ? ropeRow('sv', '    ') : ''}
    for (var j = 0u; j < J; j++) {
      let d = lid + j * ${WG}u;
      if (d < D) { y[base + d] = sv[j]${a.gate ? ' * sigm(z[base + d + P.z_offset])' : ''}; }
    }
  }
}
`;
}

/** RoPE of the row held in the private array `v` (its partner values read through `rowbuf`). */
function ropeRow(v: string, ind: string): string {
  return `${ind}for (var j = 0u; j < J; j++) { let d = lid + j * ${WG}u; if (d < D) { rowbuf[d] = ${v}[j]; } }
${ind}workgroupBarrier();
${ind}for (var j = 0u; j < J; j++) {
${ind}  let d = lid + j * ${WG}u;
${ind}  if (d < D) { ${v}[j] = ${v}[j] * cos[t * D + d + P.cos_offset] + partner(d, 1.0) * sin[t * D + d + P.sin_offset]; }
${ind}}
${ind}workgroupBarrier();`;
}

function backwardWGSL(a: HeadFusedAttrs): string {
  const norm = a.norm !== 'none';
  return `${prelude(a, a.shift || norm || a.gate)}
var<private> gv: array<f32, ${Math.ceil(a.D / WG)}>;
var<private> dwacc: array<f32, ${Math.ceil(a.D / WG)}>;
// ds of row (b, t, h) into gv; the side outputs (dz, dα, dw) only when \`own\`
fn row_ds(b: u32, t: u32, h: u32, lid: u32, own: bool) {
  let row = (b * P.T + t) * P.H + h;
  let base = row * D;
${a.shift || norm || a.gate ? '  load_row(b, t, h, lid);' : ''}
${norm ? '  let r = rstd[row + P.rstd_offset];' : ''}
  for (var j = 0u; j < J; j++) {
    let d = lid + j * ${WG}u;
    if (d < D) {
      gv[j] = gy[base + d + P.gy_offset];
${norm ? '      sv[j] = sv[j] * r;  // x̂' : ''}
    }
  }
${
  a.gate
    ? `  // m: the value the gate multiplied (n, rotated when RoPE runs too)
  var mv: array<f32, ${Math.ceil(a.D / WG)}>;
  for (var j = 0u; j < J; j++) {
    let d = lid + j * ${WG}u;
    if (d < D) { mv[j] = sv[j]${norm ? ' * w[widx(h) + d + P.w_offset]' : ''}; }
  }
${a.rope ? ropeRow('mv', '  ') : ''}
  for (var j = 0u; j < J; j++) {
    let d = lid + j * ${WG}u;
    if (d < D) {
      let s = sigm(z[base + d + P.z_offset]);
      if (own) { dz[base + d] = gv[j] * mv[j] * s * (1.0 - s); }
      gv[j] = gv[j] * s;
    }
  }`
    : ''
}
${
  a.rope
    ? `  for (var j = 0u; j < J; j++) { let d = lid + j * ${WG}u; if (d < D) { rowbuf[d] = gv[j] * sin[t * D + d + P.sin_offset]; } }
  workgroupBarrier();
  for (var j = 0u; j < J; j++) {
    let d = lid + j * ${WG}u;
    if (d < D) { gv[j] = gv[j] * cos[t * D + d + P.cos_offset] + partner(d, -1.0); }
  }
  workgroupBarrier();`
    : ''
}
${
  norm
    ? `  var dot = 0.0;
  for (var j = 0u; j < J; j++) {
    let d = lid + j * ${WG}u;
    if (d < D) {
      dot += gv[j] * w[widx(h) + d + P.w_offset] * sv[j];
      if (own) { dwacc[j] += gv[j] * sv[j]; }
    }
  }
  let mean = wg_sum(dot, lid) / f32(D);
  for (var j = 0u; j < J; j++) {
    let d = lid + j * ${WG}u;
    if (d < D) { gv[j] = r * (gv[j] * w[widx(h) + d + P.w_offset] - sv[j] * mean); }
  }`
    : ''
}
${
  a.shift
    ? `  var da = 0.0;
  for (var j = 0u; j < J; j++) { if (lid + j * ${WG}u < D) { da += gv[j] * pxv[j]; } }
  let dat = wg_sum(da, lid);
  if (own && lid == 0u) {
    let alr = sigm(alpha[row + P.alpha_offset]);
    dalpha[row] = dat * alr * (1.0 - alr);  // through α = σ(logit)
  }`
    : ''
}
}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let h = wid.x;
  let b = wid.y / P.nch;
  let t0 = (wid.y % P.nch) * P.CH;
  let t1 = min(t0 + P.CH, P.T);
  for (var j = 0u; j < J; j++) { dwacc[j] = 0.0; }
${
  a.shift
    ? `  var carry: array<f32, ${Math.ceil(a.D / WG)}>;
  if (t1 < P.T) {
    row_ds(b, t1, h, lid, false);
    let f = sigm(alpha[(b * P.T + t1) * P.H + h + P.alpha_offset])${a.keep ? ' * keep[b * P.T + t1 + P.keep_offset]' : ''};
    for (var j = 0u; j < J; j++) { carry[j] = f * gv[j]; }
  }`
    : ''
}
  for (var i = t1; i > t0; i--) {
    let t = i - 1u;
    row_ds(b, t, h, lid, true);
    let base = ((b * P.T + t) * P.H + h) * D;
${
  a.shift
    ? `    let al = sigm(alpha[(b * P.T + t) * P.H + h + P.alpha_offset]);
    let f = al${a.keep ? ' * keep[b * P.T + t + P.keep_offset]' : ''};
    for (var j = 0u; j < J; j++) {
      let d = lid + j * ${WG}u;
      if (d < D) {
        dx[base + d] = (1.0 - al) * gv[j] + carry[j];
        carry[j] = f * gv[j];
      }
    }`
    : `    for (var j = 0u; j < J; j++) {
      let d = lid + j * ${WG}u;
      if (d < D) { dx[base + d] = gv[j]; }
    }`
}
  }
${
  a.shift && a.prev
    ? `  if (t0 == 0u) {
    for (var j = 0u; j < J; j++) {
      let d = lid + j * ${WG}u;
      if (d < D) { dprev[b * P.H * D + h * D + d] = carry[j]; }
    }
  }`
    : ''
}
${
  norm
    ? `  for (var j = 0u; j < J; j++) {
    let d = lid + j * ${WG}u;
    if (d < D) { dwp[(wid.y * P.H + h) * D + d] = dwacc[j]; }
  }`
    : ''
}
}
`;
}

const codeCache = new Map<string, string>();
function cached(kind: 'fwd' | 'bwd', a: HeadFusedAttrs): string {
  const key = `${kind}:${a.D}:${a.norm}:${a.shift}:${a.keep}:${a.prev}:${a.rope}:${a.gate}`;
  let c = codeCache.get(key);
  if (!c) {
    c = kind === 'fwd' ? forwardWGSL(a) : backwardWGSL(a);
    codeCache.set(key, c);
  }
  return c;
}

function optionalInputs(inputs: readonly Tensor[], a: HeadFusedAttrs, withX: boolean): KernelInput[] {
  const out: KernelInput[] = [];
  if (withX) out.push({ name: 'x', data: inputs[0] });
  const opt = (name: string, i: number) => {
    if (i >= 0) out.push({ name, data: inputs[i] });
  };
  opt('alpha', a.at.alpha);
  opt('keep', a.at.keep);
  opt('prev', a.at.prev);
  opt('w', a.at.w);
  opt('cos', a.at.cos);
  opt('sin', a.at.sin);
  opt('z', a.at.z);
  return out;
}

function checkF32(inputs: readonly (Tensor | null)[]): void {
  for (const t of inputs) if (t && t.dtype !== 'float32') fail('headFused', `WebGPU kernels take float32 tensors, got ${t.dtype}`);
}

export function headFusedForwardWebGPU(
  backend: WebGPUBackend,
  inputs: readonly Tensor[],
  a: HeadFusedAttrs,
): { y: Tensor; rstd: Tensor | null } {
  checkF32(inputs);
  const { B, T, H, D } = a;
  const { CH, nch } = chunkOf(B, T);
  const norm = a.norm !== 'none';
  const outputs = [{ name: 'y', shape: [B, T, H, D], dtype: 'float32' as const }];
  if (norm) outputs.push({ name: 'rstd', shape: [B * T * H], dtype: 'float32' });
  const res = backend.runKernelTensors({
    name: 'headFused_fwd',
    code: cached('fwd', a),
    inputs: optionalInputs(inputs, a, true),
    outputs,
    uniforms: { u32: { T, H, nch, CH }, f32: { eps: a.eps } },
    workgroups: [H, B * nch],
  });
  return { y: res[0], rstd: norm ? res[1] : null };
}

export function headFusedBackwardWebGPU(
  backend: WebGPUBackend,
  gy: Tensor,
  inputs: readonly Tensor[],
  rstd: Tensor | null,
  a: HeadFusedAttrs,
): { dx: Tensor; dalpha: Tensor | null; dwPartial: Tensor | null; dz: Tensor | null; dprev: Tensor | null } {
  checkF32([gy, ...inputs, rstd]);
  const { B, T, H, D } = a;
  const { CH, nch } = chunkOf(B, T);
  const norm = a.norm !== 'none';
  const withX = a.shift || norm || a.gate;
  const ins = optionalInputs(inputs, a, withX);
  ins.push({ name: 'gy', data: gy });
  if (rstd) ins.push({ name: 'rstd', data: rstd });
  const outputs: { name: string; shape: number[]; dtype: 'float32' }[] = [{ name: 'dx', shape: [B, T, H, D], dtype: 'float32' }];
  if (a.shift) outputs.push({ name: 'dalpha', shape: [B, T, H], dtype: 'float32' });
  if (norm) outputs.push({ name: 'dwp', shape: [B * nch, H, D], dtype: 'float32' });
  if (a.gate) outputs.push({ name: 'dz', shape: [B, T, H * D], dtype: 'float32' });
  const withPrev = a.shift && a.prev;
  if (withPrev) outputs.push({ name: 'dprev', shape: [B, H * D], dtype: 'float32' });
  const res = backend.runKernelTensors({
    name: 'headFused_bwd',
    code: cached('bwd', a),
    inputs: ins,
    outputs,
    uniforms: { u32: { T, H, nch, CH } },
    workgroups: [H, B * nch],
  });
  let i = 1;
  const dalpha = a.shift ? res[i++] : null;
  const dwPartial = norm ? res[i++] : null;
  const dz = a.gate ? res[i++] : null;
  const dprev = withPrev ? res[i++] : null;
  return { dx: res[0], dalpha, dwPartial, dz, dprev };
}
