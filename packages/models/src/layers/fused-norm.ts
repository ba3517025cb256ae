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

/** `[y, rstd]`, or with `res` `[y, rstd, s]` where `s = x + res` is what was normalised. */
function cpuForward(x: Tensor, res: Tensor | null, w: Tensor | null, eps: number): Tensor[] {
  const [N, D] = rowsOf(x);
  const xv = x.dataSync();
  const rs = res ? res.dataSync() : null;
  const wv = w ? w.dataSync() : null;
  const sv = rs ? like(x, x.size) : null;
  const Hw = w ? w.size / D : 1; // gains per row: one [D] gain, or one per head cycling over the rows
  const y = like(x, x.size);
  const r = like(x, N);
  for (let i = 0; i < N; i++) {
    const o = i * D;
    let ss = 0;
    for (let j = 0; j < D; j++) {
      let v = xv[o + j];
      if (sv && rs) {
        sv[o + j] = v + rs[o + j];
        v = sv[o + j];
      }
      ss += v * v;
    }
    r[i] = 1 / Math.sqrt(ss / D + eps);
    const ri = r[i]; // rounded as stored
    const src = sv ?? xv;
    const wo = (i % Hw) * D;
    for (let j = 0; j < D; j++) y[o + j] = wv ? src[o + j] * ri * wv[wo + j] : src[o + j] * ri;
  }
  const b = x.backend;
  const out = [tensor(y, [...x.shape], { dtype: x.dtype, backend: b }), tensor(r, [N], { dtype: x.dtype, backend: b })];
  if (sv) out.push(tensor(sv, [...x.shape], { dtype: x.dtype, backend: b }));
  return out;
}

/** `[dx, dw]` of the norm of `x` (`gs`: a gradient reaching `x` directly, added to dx). */
function cpuBackward(g: Tensor, gs: Tensor | null, x: Tensor, w: Tensor | null, rstd: Tensor): [Tensor, Tensor | null] {
  const [N, D] = rowsOf(x);
  const xv = x.dataSync();
  const gv = g.dataSync();
  const gsv = gs ? gs.dataSync() : null;
  const rv = rstd.dataSync();
  const wv: TypedArray | null = w ? w.dataSync() : null;
  const dx = like(x, x.size);
  const Hw = w ? w.size / D : 1;
  const dw = w ? new Float64Array(Hw * D) : null;
  for (let i = 0; i < N; i++) {
    const o = i * D;
    const wo = (i % Hw) * D;
    const r = rv[i];
    let s = 0;
    for (let j = 0; j < D; j++) s += gv[o + j] * (wv ? wv[wo + j] : 1) * xv[o + j];
    const c = (r * s) / D;
    for (let j = 0; j < D; j++) {
      const xh = xv[o + j] * r;
      const gw = gv[o + j] * (wv ? wv[wo + j] : 1);
      dx[o + j] = r * (gw - xh * c) + (gsv ? gsv[o + j] : 0);
      if (dw) dw[wo + j] += gv[o + j] * xh;
    }
  }
  const b = x.backend;
  const dxT = tensor(dx, [...x.shape], { dtype: x.dtype, backend: b });
  if (!dw || !w) return [dxT, null];
  const dwOut = like(w, w.size);
  dwOut.set(dw);
  return [dxT, tensor(dwOut, [...w.shape], { dtype: w.dtype, backend: b })];
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

/** Kernel names: `rms_norm_fwd`, `add_rms_norm_fwd`, `rms_norm_bwd`, `add_rms_norm_bwd` (+ `_nw` without weight). */
function kname(stage: 'fwd' | 'bwd', add: boolean, weight: boolean): string {
  return `${add ? 'add_' : ''}rms_norm_${stage}${weight ? '' : '_nw'}`;
}

function gpuForward(b: WebGPUBackend, x: Tensor, res: Tensor | null, w: Tensor | null, eps: number): Tensor[] {
  const [N, D] = rowsOf(x);
  const WG = wgFor(D);
  const Hw = w ? w.size / D : 1;
  const wv = (j: string) => (w ? ` * w[P.w_offset + (row % P.Hw) * P.D + ${j}]` : '');
  // with a residual, pass 1 writes s = x + res and pass 2 reads back what this thread wrote
  const load = res ? 'let v = x[xo + j] + res[P.res_offset + yo + j]; s[yo + j] = v;' : 'let v = x[xo + j];';
  const src = res ? 's[yo + j]' : 'x[xo + j]';
  const code = `${wgSum(WG)}
@compute @workgroup_size(${WG})
fn main(${ENTRY}) {
  let row = wg_linear(wid, nwg);
  if (row >= P.num_wg) { return; }
  let xo = P.x_offset + row * P.D;
  let yo = row * P.D;
  var ss: f32 = 0.0;
  for (var j = lid; j < P.D; j += ${WG}u) { ${load} ss += v * v; }
  let r = 1.0 / sqrt(wg_sum(ss, lid) / f32(P.D) + P.eps);
  for (var j = lid; j < P.D; j += ${WG}u) { y[yo + j] = ${src} * r${wv('j')}; }
  if (lid == 0u) { rstd[row] = r; }
}`;
  const inputs = [{ name: 'x', data: x }];
  if (res) inputs.push({ name: 'res', data: res });
  if (w) inputs.push({ name: 'w', data: w });
  const outputs = [
    { name: 'y', shape: [...x.shape], dtype: 'float32' as const },
    { name: 'rstd', shape: [N], dtype: 'float32' as const },
  ];
  if (res) outputs.push({ name: 's', shape: [...x.shape], dtype: 'float32' });
  return b.runKernelTensors({
    name: kname('fwd', res !== null, w !== null),
    code,
    inputs,
    outputs,
    uniforms: { u32: { D, Hw }, f32: { eps } },
    workgroups: N,
  });
}

function gpuBackward(b: WebGPUBackend, g: Tensor, gs: Tensor | null, x: Tensor, w: Tensor | null, rstd: Tensor): [Tensor, Tensor | null] {
  const [N, D] = rowsOf(x);
  const WG = wgFor(D);
  const K = Math.ceil(D / WG);
  // rows are M groups of Hw (one gain per head, cycling); workgroup blk = bm·Hw + h takes the
  // rows m·Hw + h of R groups m, so its partial dw is that head's gain, at dwp[bm, h·D + j]
  const Hw = w ? w.size / D : 1;
  const M = N / Hw;
  const R = Math.max(1, Math.ceil(N / BWD_BLOCKS));
  const blocksM = Math.ceil(M / R);
  const blocks = blocksM * Hw;
  const wv = (j: string) => (w ? `w[P.w_offset + h * P.D + ${j}]` : '1.0');
  const plus = gs ? ' + gs[P.gs_offset + row * P.D + j]' : '';
  const code = `${wgSum(WG)}
@compute @workgroup_size(${WG})
fn main(${ENTRY}) {
  let blk = wg_linear(wid, nwg);
  if (blk >= P.num_wg) { return; }
  var acc: array<f32, ${K}>;
  let h = blk % P.Hw;
  let m0 = (blk / P.Hw) * P.R;
  let m1 = min(m0 + P.R, P.M);
  for (var m = m0; m < m1; m++) {
    let row = m * P.Hw + h;
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
        dx[row * P.D + j] = r * (gj * ${wv('j')} - xh * c)${plus};
        acc[k] += gj * xh;
      }
    }
  }
  ${w ? `for (var k = 0u; k < ${K}u; k++) { let j = lid + k * ${WG}u; if (j < P.D) { dwp[blk * P.D + j] = acc[k]; } }` : ''}
}`;
  const inputs = [
    { name: 'g', data: g },
    { name: 'x', data: x },
    { name: 'rstd', data: rstd },
  ];
  if (gs) inputs.push({ name: 'gs', data: gs });
  if (w) inputs.push({ name: 'w', data: w });
  const outputs = [{ name: 'dx', shape: [...x.shape], dtype: 'float32' as const }];
  if (w) outputs.push({ name: 'dwp', shape: [blocksM, Hw * D], dtype: 'float32' });
  const res = b.runKernelTensors({
    name: kname('bwd', gs !== null, w !== null),
    code,
    inputs,
    outputs,
    uniforms: { u32: { D, M, R, Hw } },
    workgroups: blocks,
  });
  if (!w) return [res[0], null];
  const dw = blocksM === 1 ? reshape(res[1], [Hw * D]) : sum(res[1], 0);
  res[1].dispose();
  return [res[0], dw];
}

// ---- the ops --------------------------------------------------------------------------------

function isCpu(op: string, x: Tensor): boolean {
  if (x.backend instanceof CpuBackend) return true;
  if (x.backend instanceof WebGPUBackend) return false;
  return fail(op, `the ${x.backend.name} backend has no fused RMSNorm kernel (kernels: cpu, webgpu)`);
}

function forwardKernel(x: Tensor, res: Tensor | null, w: Tensor | null, eps: number): Tensor[] {
  return isCpu('rmsNorm', x) ? cpuForward(x, res, w, eps) : gpuForward(x.backend as WebGPUBackend, x, res, w, eps);
}

function backwardKernel(g: Tensor, gs: Tensor | null, x: Tensor, w: Tensor | null, rstd: Tensor): [Tensor, Tensor | null] {
  return isCpu('rmsNorm', x) ? cpuBackward(g, gs, x, w, rstd) : gpuBackward(x.backend as WebGPUBackend, g, gs, x, w, rstd);
}

const fused = customOp<Attrs>({
  name: 'rmsNorm',
  // the backward reads x (and w); y is not needed
  saveOutputs: false,
  forward(inputs, a) {
    const [x, w = null] = inputs;
    const [y, r] = forwardKernel(x, null, w, a.eps);
    return { outputs: [y], saved: [r] };
  },
  backward(gOut, saved, inputs) {
    const g = gOut[0];
    const [x, w = null] = inputs;
    if (!g) return inputs.map(() => null);
    const [dx, dw] = backwardKernel(g, null, x, w, saved[0]);
    return w ? [dx, dw] : [dx];
  },
});

/** `[x, res, w?]` → `[s = x + res, rmsNorm(s)·w]`; saves s and the per-row rstd. */
const fusedAdd = customOp<Attrs>({
  name: 'addRmsNorm',
  // the backward reads s (saved) and w: x and res are not needed
  saveInputs: false,
  saveOutputs: false,
  forward(inputs, a) {
    const [x, res, w = null] = inputs;
    const [y, r, s] = forwardKernel(x, res, w, a.eps);
    return { outputs: [s, y], saved: w ? [s, r, w] : [s, r] };
  },
  backward(gOut, saved, inputs) {
    const [gs, gy] = gOut;
    const w = inputs.length > 2 ? saved[2] : null;
    if (!gy) {
      // only the sum was used further: its gradient reaches x and res unchanged
      return w ? [gs, gs, null] : [gs, gs];
    }
    const [dx, dw] = backwardKernel(gy, gs, saved[0], w, saved[1]);
    return w ? [dx, dx, dw] : [dx, dx];
  },
});

function contiguousOf(x: Tensor): Tensor {
  return x.isContiguous ? x : x.contiguous();
}

/**
 * Fused RMSNorm over the last axis of `x` `[..., D]`: `x / √(mean(x²) + eps) · weight` (weight
 * `[D]`, or `[H·D]` for `x` `[..., H, D]`: a gain per head, or null), one kernel forward and one (plus a sum over row blocks for `dweight`)
 * backward, saving only `x` and the per-row `1/√(mean(x²) + eps)`. CPU (float32/float64) and
 * WebGPU (float32). Callers check shapes, dtypes and backends.
 */
export function fusedRmsNorm(x: Tensor, weight: Tensor | null, eps: number): Tensor {
  const xc = contiguousOf(x);
  try {
    return fused(weight ? [xc, weight] : [xc], { eps })[0];
  } finally {
    if (xc !== x) xc.dispose();
  }
}

/**
 * The residual add and the RMSNorm after it as one fused op: `s = x + res` and
 * `y = rmsNorm(s)·weight` from one kernel, and in the backward `dx = dres = ds + dnorm(dy)` from
 * one kernel (no separate add forward, no gradient accumulation backward). Saves s and the
 * per-row rstd. `x`, `res` `[..., D]` of one shape. Returns `[s, y]`.
 */
export function fusedAddRmsNorm(x: Tensor, res: Tensor, weight: Tensor | null, eps: number): [Tensor, Tensor] {
  const xc = contiguousOf(x);
  const rc = contiguousOf(res);
  try {
    const [s, y] = fusedAdd(weight ? [xc, rc, weight] : [xc, rc], { eps });
    return [s, y];
  } finally {
    if (xc !== x) xc.dispose();
    if (rc !== res) rc.dispose();
  }
}
