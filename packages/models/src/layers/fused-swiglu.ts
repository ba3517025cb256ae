import { customOp } from '@foxgate/autograd';
import { add, CpuBackend, fail, matmul, reshape, sum, type Tensor, tensor, transpose, WebGPUBackend } from '@foxgate/tensor';

/*
 * The SwiGLU MLP after its gate_proj as one fused op with its own backward:
 *   h = silu(g) ⊙ u  with  [g, u] = gu split in halves along the last axis (no narrow copies),
 *   out = h · Wᵀ (+ b)                                            (down_proj)
 * The forward saves only gu (the input, kept by the tape): the backward recomputes h in one
 * kernel, takes dW = gᵀ·h, db = Σ_rows g and dh = g·W, and turns dh into dgu in one kernel:
 *   dg = dh ⊙ u ⊙ σ(g)(1 + g(1 − σ(g))),  du = dh ⊙ silu(g).
 * CPU kernels on host arrays (float32/float64) and WGSL kernels (float32) side by side; the
 * matmuls are the backend's.
 */

// ---- CPU ------------------------------------------------------------------------------------

function sigmoid(v: number): number {
  if (v >= 0) return 1 / (1 + Math.exp(-v));
  const e = Math.exp(v);
  return e / (1 + e);
}

function like(x: Tensor, n: number): Float32Array | Float64Array {
  return x.dtype === 'float64' ? new Float64Array(n) : new Float32Array(n);
}

function cpuSwiglu(gu: Tensor): Tensor {
  const H = gu.shape[gu.rank - 1] / 2;
  const N = H === 0 ? 0 : gu.size / (2 * H);
  const v = gu.dataSync();
  const h = like(gu, N * H);
  for (let i = 0; i < N; i++) {
    const o = 2 * H * i;
    for (let j = 0; j < H; j++) {
      const g = v[o + j];
      h[i * H + j] = g * sigmoid(g) * v[o + H + j];
    }
  }
  return tensor(h, [...gu.shape.slice(0, -1), H], { dtype: gu.dtype, backend: gu.backend });
}

function cpuSwigluBackward(gu: Tensor, dh: Tensor): Tensor {
  const H = gu.shape[gu.rank - 1] / 2;
  const N = H === 0 ? 0 : gu.size / (2 * H);
  const v = gu.dataSync();
  const d = dh.dataSync();
  const out = like(gu, gu.size);
  for (let i = 0; i < N; i++) {
    const o = 2 * H * i;
    for (let j = 0; j < H; j++) {
      const g = v[o + j];
      const u = v[o + H + j];
      const s = sigmoid(g);
      const dj = d[i * H + j];
      out[o + j] = dj * u * s * (1 + g * (1 - s));
      out[o + H + j] = dj * g * s;
    }
  }
  return tensor(out, [...gu.shape], { dtype: gu.dtype, backend: gu.backend });
}

// ---- WGSL -----------------------------------------------------------------------------------

const WG = 256;
const ENTRY = '@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32';
/** σ without overflow: exp of −|v| only. */
const SIGMOID = `fn sig(v: f32) -> f32 {
  let e = exp(-abs(v));
  let s = 1.0 / (1.0 + e);
  return select(e * s, s, v >= 0.0);
}
`;

function gpuSwiglu(b: WebGPUBackend, gu: Tensor): Tensor {
  const H = gu.shape[gu.rank - 1] / 2;
  const n = gu.size / 2;
  const code = `${SIGMOID}
@compute @workgroup_size(${WG})
fn main(${ENTRY}) {
  let i = wg_linear(wid, nwg) * ${WG}u + lid;
  if (i >= P.n) { return; }
  let row = i / P.H;
  let o = P.gu_offset + row * 2u * P.H + (i - row * P.H);
  let g = gu[o];
  h[i] = g * sig(g) * gu[o + P.H];
}`;
  return b.runKernelTensors({
    name: 'swiglu_fwd',
    code,
    inputs: [{ name: 'gu', data: gu }],
    outputs: [{ name: 'h', shape: [...gu.shape.slice(0, -1), H], dtype: 'float32' }],
    uniforms: { u32: { n, H } },
    workgroups: Math.ceil(n / WG),
  })[0];
}

function gpuSwigluBackward(b: WebGPUBackend, gu: Tensor, dh: Tensor): Tensor {
  const H = gu.shape[gu.rank - 1] / 2;
  const n = gu.size / 2;
  const code = `${SIGMOID}
@compute @workgroup_size(${WG})
fn main(${ENTRY}) {
  let i = wg_linear(wid, nwg) * ${WG}u + lid;
  if (i >= P.n) { return; }
  let row = i / P.H;
  let base = row * 2u * P.H + (i - row * P.H);
  let g = gu[P.gu_offset + base];
  let u = gu[P.gu_offset + base + P.H];
  let s = sig(g);
  let d = dh[P.dh_offset + i];
  dgu[base] = d * u * s * (1.0 + g * (1.0 - s));
  dgu[base + P.H] = d * g * s;
}`;
  return b.runKernelTensors({
    name: 'swiglu_bwd',
    code,
    inputs: [
      { name: 'gu', data: gu },
      { name: 'dh', data: dh },
    ],
    outputs: [{ name: 'dgu', shape: [...gu.shape], dtype: 'float32' }],
    uniforms: { u32: { n, H } },
    workgroups: Math.ceil(n / WG),
  })[0];
}

// ---- the op ---------------------------------------------------------------------------------

function isCpu(op: string, x: Tensor): boolean {
  if (x.backend instanceof CpuBackend) return true;
  if (x.backend instanceof WebGPUBackend) return false;
  return fail(op, `the ${x.backend.name} backend has no fused SwiGLU kernel (kernels: cpu, webgpu)`);
}

/** `silu(g) ⊙ u` of `gu` `[..., 2H]` → `[..., H]` in one kernel (no gradient: the op's forward and backward use it). */
function swigluKernel(gu: Tensor): Tensor {
  return isCpu('swiglu', gu) ? cpuSwiglu(gu) : gpuSwiglu(gu.backend as WebGPUBackend, gu);
}

function swigluKernelBackward(gu: Tensor, dh: Tensor): Tensor {
  return isCpu('swiglu', gu) ? cpuSwigluBackward(gu, dh) : gpuSwigluBackward(gu.backend as WebGPUBackend, gu, dh);
}

/** `h · Wᵀ (+ b)` for `h` `[..., H]`, `W` `[dim, H]`. */
function down(h: Tensor, w: Tensor, bias: Tensor | null): Tensor {
  const wt = transpose(w);
  const y = matmul(h, wt);
  wt.dispose();
  if (!bias) return y;
  const out = add(y, bias);
  y.dispose();
  return out;
}

const fused = customOp({
  name: 'swiglu',
  // the backward recomputes h from gu: the output is not needed
  saveOutputs: false,
  forward(inputs) {
    const [gu, w, bias = null] = inputs;
    const h = swigluKernel(gu);
    const out = down(h, w, bias);
    h.dispose();
    return { outputs: [out] };
  },
  backward(gOut, _saved, inputs) {
    const g = gOut[0];
    const [gu, w, bias = null] = inputs;
    if (!g) return inputs.map(() => null);
    const dim = w.shape[0];
    const H = w.shape[1];
    const N = g.size / dim;
    const g2 = reshape(g, [N, dim]);
    const h = swigluKernel(gu);
    const h2 = reshape(h, [N, H]);
    const g2t = transpose(g2);
    const dw = matmul(g2t, h2); // [dim, H]
    const dh = matmul(g, w); // [..., H]
    const dgu = swigluKernelBackward(gu, dh);
    const db = bias ? sum(g2, 0) : null;
    for (const t of [g2, h, h2, g2t, dh]) t.dispose();
    return bias ? [dgu, dw, db] : [dgu, dw];
  },
});

/**
 * `down(silu(g) ⊙ u)` with `[g, u]` the halves of `gu` `[..., 2H]` (the gate_proj output) and the
 * down projection `weight` `[dim, H]`, `bias` `[dim]` or null → `[..., dim]`. One kernel for the
 * activation, the backend's matmul for the projection; under a gradient only `gu` is kept (the
 * backward recomputes `silu(g) ⊙ u` in one kernel and computes `dgu` in one more). CPU
 * (float32/float64) and WebGPU (float32). Callers check shapes, dtypes and backends.
 */
export function fusedSwigluDown(gu: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
  const guc = gu.isContiguous ? gu : gu.contiguous();
  try {
    return fused(bias ? [guc, weight, bias] : [guc, weight])[0];
  } finally {
    if (guc !== gu) guc.dispose();
  }
}
