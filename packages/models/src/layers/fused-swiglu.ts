import { customOp } from '@foxgate/autograd';
import { add, CpuBackend, fail, matmul, reshape, sum, type Tensor, tensor, transpose, WebGPUBackend } from '@foxgate/tensor';

/*
 * The SwiGLU MLP as one fused op with its own backward:
 *   gu = x · Wgᵀ (+ bg)                                           (gate_proj)
 *   h = silu(g) ⊙ u  with  [g, u] = gu split in halves along the last axis (no narrow copies),
 *   out = h · Wdᵀ (+ bd)                                           (down_proj)
 * The forward saves gu (and the tape x): the backward recomputes h in one kernel, takes
 * dWd = gᵀ·h, dh = g·Wd, turns dh into dgu in one kernel,
 *   dg = dh ⊙ u ⊙ σ(g)(1 + g(1 − σ(g))),  du = dh ⊙ silu(g),
 * then dWg = dguᵀ·x and dx = dgu·Wg (weight gradients in the weights' layout: no copies).
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

/** `x · Wᵀ (+ b)` for `x` `[..., in]`, `W` `[out, in]`. */
function linearOf(x: Tensor, w: Tensor, bias: Tensor | null): Tensor {
  const wt = transpose(w);
  const y = matmul(x, wt);
  wt.dispose();
  if (!bias) return y;
  const out = add(y, bias);
  y.dispose();
  return out;
}

/** `aᵀ·b` over the rows of `a` `[..., n]` and `b` `[..., m]` → `[n, m]` (a weight gradient in `[out, in]` layout). */
function rowsOuter(a: Tensor, b: Tensor): Tensor {
  const n = a.shape[a.rank - 1];
  const a2 = reshape(a, [a.size / n, n]);
  const b2 = reshape(b, [b.size / b.shape[b.rank - 1], b.shape[b.rank - 1]]);
  const at = transpose(a2);
  const out = matmul(at, b2);
  for (const t of [a2, b2, at]) t.dispose();
  return out;
}

function rowSum(g: Tensor): Tensor {
  const n = g.shape[g.rank - 1];
  const g2 = reshape(g, [g.size / n, n]);
  const out = sum(g2, 0);
  g2.dispose();
  return out;
}

interface Attrs {
  /** Biases present: [gate_proj, down_proj]. */
  gateBias: boolean;
  downBias: boolean;
}

const fused = customOp<Attrs>({
  name: 'swiglu',
  // the tape keeps the inputs (x and the weights); gu is saved; h is recomputed; no output is needed
  saveOutputs: false,
  forward(inputs, a) {
    const [x, wg, wd] = inputs;
    const bg = a.gateBias ? inputs[3] : null;
    const bd = a.downBias ? inputs[a.gateBias ? 4 : 3] : null;
    const gu = linearOf(x, wg, bg);
    const h = swigluKernel(gu);
    const out = linearOf(h, wd, bd);
    h.dispose();
    return { outputs: [out], saved: [gu] };
  },
  backward(gOut, saved, inputs, _outputs, a) {
    const g = gOut[0];
    if (!g) return inputs.map(() => null);
    const [x, wg, wd] = inputs;
    const gu = saved[0];
    const h = swigluKernel(gu);
    const dwd = rowsOuter(g, h); // [dim, H]
    const dh = matmul(g, wd); // [..., H]
    h.dispose();
    const dgu = swigluKernelBackward(gu, dh);
    dh.dispose();
    const dwg = rowsOuter(dgu, x); // [2H, dim]
    const dx = matmul(dgu, wg); // [..., dim]
    const grads: (Tensor | null)[] = [dx, dwg, dwd];
    if (a.gateBias) grads.push(rowSum(dgu));
    if (a.downBias) grads.push(rowSum(g));
    dgu.dispose();
    return grads;
  },
});

/**
 * The SwiGLU MLP `down(silu(g) ⊙ u)` with `[g, u] = x·gate_projᵀ (+ bias)` split in halves, as
 * one op: `x` `[..., dim]`, gate_proj `[2H, dim]`, down_proj `[dim, H]` (biases `[2H]`, `[dim]`
 * or null) → `[..., dim]`. The matmuls are the backend's; the activation and its gradient are
 * one kernel each. Under a gradient it keeps `x` and the gate_proj output `gu` only (the
 * backward recomputes `silu(g) ⊙ u`), and the weight gradients come out in the weights' own
 * layout (no transposed copy). CPU (float32/float64) and WebGPU (float32). Callers check shapes,
 * dtypes and backends.
 */
export function fusedSwiglu(x: Tensor, gateWeight: Tensor, gateBias: Tensor | null, downWeight: Tensor, downBias: Tensor | null): Tensor {
  const inputs = [x, gateWeight, downWeight];
  if (gateBias) inputs.push(gateBias);
  if (downBias) inputs.push(downBias);
  return fused(inputs, { gateBias: gateBias !== null, downBias: downBias !== null })[0];
}
