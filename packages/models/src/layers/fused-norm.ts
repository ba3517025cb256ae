import { customOp } from '@foxgate/autograd';
import { CpuBackend, fail, reshape, sum, type Tensor, type TypedArray, tensor, WebGPUBackend } from '@foxgate/tensor';

/*
 * RMSNorm as one fused op with its own backward: `y = x · r · w`, `r = 1/√(mean(x²) + eps)` per
 * row of the last axis (D features). The forward saves only the per-row `r` (the tape keeps `x`,
 * the input); the backward computes, per row,
 *   x̂ = x·r,  c = r · Σ_j g_j w_j x_j / D,  dx = r · (g⊙w − x̂ · c)
 * and dw = Σ_rows g ⊙ x̂ in the same pass (per block of rows, then one sum over the blocks).
 * Without a weight, w ≡ 1 and there is no dw. CPU kernels on host arrays (float32/float64, sums
 * in float64) and WGSL kernels (float32) side by side.
 */

interface Attrs {
  eps: number;
}

/** Rows per workgroup of the backward: the blocks (and partial dw rows) stay near this count. */
const BWD_BLOCKS = 512;

function rowsOf(x: Tensor): [number, number] {
  const D = x.shape[x.rank - 1];
  return [D === 0 ? 0 : x.size / D, D];
}

// ---- CPU ------------------------------------------------------------------------------------

function like(x: Tensor, n: number): Float32Array | Float64Array {
  return x.dtype === 'float64' ? new Float64Array(n) : new Float32Array(n);
}

function cpuForward(x: Tensor, w: Tensor | null, eps: number): [Tensor, Tensor] {
  const [N, D] = rowsOf(x);
  const xv = x.dataSync();
  const wv = w ? w.dataSync() : null;
  const y = like(x, x.size);
  const r = like(x, N);
  for (let i = 0; i < N; i++) {
    const o = i * D;
    let ss = 0;
    for (let j = 0; j < D; j++) ss += xv[o + j] * xv[o + j];
    const ri = 1 / Math.sqrt(ss / D + eps);
    r[i] = ri;
    const rr = r[i]; // rounded as stored
    if (wv) for (let j = 0; j < D; j++) y[o + j] = xv[o + j] * rr * wv[j];
    else for (let j = 0; j < D; j++) y[o + j] = xv[o + j] * rr;
  }
  const b = x.backend;
  return [tensor(y, [...x.shape], { dtype: x.dtype, backend: b }), tensor(r, [N], { dtype: x.dtype, backend: b })];
}

function cpuBackward(g: Tensor, x: Tensor, w: Tensor | null, rstd: Tensor, needW: boolean): [Tensor, Tensor | null] {
  const [N, D] = rowsOf(x);
  const xv = x.dataSync();
  const gv = g.dataSync();
  const rv = rstd.dataSync();
  const wv: TypedArray | null = w ? w.dataSync() : null;
  const dx = like(x, x.size);
  const dw = needW && w ? new Float64Array(D) : null;
  for (let i = 0; i < N; i++) {
    const o = i * D;
    const r = rv[i];
    let s = 0;
    for (let j = 0; j < D; j++) s += gv[o + j] * (wv ? wv[j] : 1) * xv[o + j];
    const c = (r * s) / D;
    for (let j = 0; j < D; j++) {
      const xh = xv[o + j] * r;
      const gw = gv[o + j] * (wv ? wv[j] : 1);
      dx[o + j] = r * (gw - xh * c);
      if (dw) dw[j] += gv[o + j] * xh;
    }
  }
  const b = x.backend;
  const dxT = tensor(dx, [...x.shape], { dtype: x.dtype, backend: b });
  if (!dw || !w) return [dxT, null];
  const dwOut = like(w, D);
  dwOut.set(dw);
  return [dxT, tensor(dwOut, [D], { dtype: w.dtype, backend: b })];
}

// ---- WGSL -----------------------------------------------------------------------------------

const ENTRY = '@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32';

/** Threads per workgroup for rows of D features. */
function wgFor(D: number): number {
  return D <= 64 ? 64 : D <= 128 ? 128 : 256;
}

/** A workgroup sum over `red` (every thread gets the total). */
function wgSum(WG: number): string {
  return `var<workgroup> red: array<f32, ${WG}>;
fn wg_sum(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var h = ${WG / 2}u; h > 0u; h >>= 1u) {
    if (lid < h) { red[lid] = red[lid] + red[lid + h]; }
    workgroupBarrier();
  }
  let t = red[0];
  workgroupBarrier();
  return t;
}
`;
}

function gpuForward(b: WebGPUBackend, x: Tensor, w: Tensor | null, eps: number): [Tensor, Tensor] {
  const [N, D] = rowsOf(x);
  const WG = wgFor(D);
  const wv = (j: string) => (w ? ` * w[P.w_offset + ${j}]` : '');
  const code = `${wgSum(WG)}
@compute @workgroup_size(${WG})
fn main(${ENTRY}) {
  let row = wg_linear(wid, nwg);
  if (row >= P.num_wg) { return; }
  let xo = P.x_offset + row * P.D;
  var ss: f32 = 0.0;
  for (var j = lid; j < P.D; j += ${WG}u) { let v = x[xo + j]; ss += v * v; }
  let r = 1.0 / sqrt(wg_sum(ss, lid) / f32(P.D) + P.eps);
  let yo = row * P.D;
  for (var j = lid; j < P.D; j += ${WG}u) { y[yo + j] = x[xo + j] * r${wv('j')}; }
  if (lid == 0u) { rstd[row] = r; }
}`;
  const inputs = [{ name: 'x', data: x }];
  if (w) inputs.push({ name: 'w', data: w });
  const [y, r] = b.runKernelTensors({
    name: w ? 'rms_norm_fwd' : 'rms_norm_fwd_nw',
    code,
    inputs,
    outputs: [
      { name: 'y', shape: [...x.shape], dtype: 'float32' },
      { name: 'rstd', shape: [N], dtype: 'float32' },
    ],
    uniforms: { u32: { D }, f32: { eps } },
    workgroups: N,
  });
  return [y, r];
}

function gpuBackward(b: WebGPUBackend, g: Tensor, x: Tensor, w: Tensor | null, rstd: Tensor, needW: boolean): [Tensor, Tensor | null] {
  const [N, D] = rowsOf(x);
  const WG = wgFor(D);
  const K = Math.ceil(D / WG);
  const R = Math.max(1, Math.ceil(N / BWD_BLOCKS));
  const blocks = Math.ceil(N / R);
  const dwOut = needW && w !== null;
  const wv = (j: string) => (w ? `w[P.w_offset + ${j}]` : '1.0');
  const code = `${wgSum(WG)}
@compute @workgroup_size(${WG})
fn main(${ENTRY}) {
  let blk = wg_linear(wid, nwg);
  if (blk >= P.num_wg) { return; }
  var acc: array<f32, ${K}>;
  let r0 = blk * P.R;
  let r1 = min(r0 + P.R, P.N);
  for (var row = r0; row < r1; row++) {
    let xo = P.x_offset + row * P.D;
    let go = P.g_offset + row * P.D;
    let r = rstd[P.rstd_offset + row];
    var s: f32 = 0.0;
    for (var j = lid; j < P.D; j += ${WG}u) { s += g[go + j] * ${wv('j')} * x[xo + j]; }
    let c = r * wg_sum(s, lid) / f32(P.D);
    for (var k = 0u; k < ${K}u; k++) {
      let j = lid + k * ${WG}u;
      if (j < P.D) {
        let xh = x[xo + j] * r;
        let gj = g[go + j];
        dx[row * P.D + j] = r * (gj * ${wv('j')} - xh * c);
        acc[k] += gj * xh;
      }
    }
  }
  ${dwOut ? `for (var k = 0u; k < ${K}u; k++) { let j = lid + k * ${WG}u; if (j < P.D) { dwp[blk * P.D + j] = acc[k]; } }` : ''}
}`;
  const inputs = [
    { name: 'g', data: g },
    { name: 'x', data: x },
    { name: 'rstd', data: rstd },
  ];
  if (w) inputs.push({ name: 'w', data: w });
  const outputs = [{ name: 'dx', shape: [...x.shape], dtype: 'float32' as const }];
  if (dwOut) outputs.push({ name: 'dwp', shape: [blocks, D], dtype: 'float32' });
  const res = b.runKernelTensors({
    name: w ? 'rms_norm_bwd' : 'rms_norm_bwd_nw',
    code,
    inputs,
    outputs,
    uniforms: { u32: { D, N, R } },
    workgroups: blocks,
  });
  if (!dwOut) return [res[0], null];
  const dw = blocks === 1 ? reshape(res[1], [D]) : sum(res[1], 0);
  res[1].dispose();
  return [res[0], dw];
}

// ---- the op ---------------------------------------------------------------------------------

function slot(op: string, x: Tensor): 'cpu' | 'webgpu' {
  if (x.backend instanceof CpuBackend) return 'cpu';
  if (x.backend instanceof WebGPUBackend) return 'webgpu';
  return fail(op, `the ${x.backend.name} backend has no fused RMSNorm kernel (kernels: cpu, webgpu)`);
}

const fused = customOp<Attrs>({
  name: 'rmsNorm',
  // the backward reads x (and w); y is not needed
  saveOutputs: false,
  forward(inputs, a) {
    const [x, w = null] = inputs;
    const [y, r] = slot('rmsNorm', x) === 'cpu' ? cpuForward(x, w, a.eps) : gpuForward(x.backend as WebGPUBackend, x, w, a.eps);
    return { outputs: [y], saved: [r] };
  },
  backward(gOut, saved, inputs) {
    const g = gOut[0];
    const [x, w = null] = inputs;
    if (!g) return inputs.map(() => null);
    const r = saved[0];
    const [dx, dw] =
      slot('rmsNorm', x) === 'cpu' ? cpuBackward(g, x, w, r, w !== null) : gpuBackward(x.backend as WebGPUBackend, g, x, w, r, w !== null);
    return w ? [dx, dw] : [dx];
  },
});

/**
 * Fused RMSNorm over the last axis of `x` `[..., D]`: `x / √(mean(x²) + eps) · weight` (weight
 * `[D]` or null), one kernel forward and one (plus a sum over row blocks for `dweight`)
 * backward, saving only `x` and the per-row `1/√(mean(x²) + eps)`. CPU (float32/float64) and
 * WebGPU (float32). Callers check shapes, dtypes and backends.
 */
export function fusedRmsNorm(x: Tensor, weight: Tensor | null, eps: number): Tensor {
  const xc = x.isContiguous ? x : x.contiguous();
  try {
    return fused(weight ? [xc, weight] : [xc], { eps })[0];
  } finally {
    if (xc !== x) xc.dispose();
  }
}
