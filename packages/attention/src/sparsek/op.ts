import { customOp } from '@foxgate/autograd';
import { fail, fmtShape, type Tensor, tensor, type WebGPUBackend } from '@foxgate/tensor';
import { type FloatArray, sparsekBackwardCpu, sparsekForwardCpu } from './cpu.js';
import { sparsekReference } from './reference.js';
import { checkBudget, checkFloat, checkImpl, checkOpts, type SparsekBudget } from './validate.js';
import { sparsekBackwardWebGPU, sparsekForwardWebGPU } from './webgpu.js';

export interface SparsekOptions {
  /** 'fused' (default: the CPU or WGSL kernel) or 'reference' (composed tensor ops). */
  impl?: 'fused' | 'reference';
}

interface Attrs {
  R: number;
  m: number;
  k: Float64Array;
}

const OP = 'sparsek';

const fusedOp = customOp<Attrs>({
  name: OP,
  forward([z], a) {
    if (z.backend.name === 'webgpu') {
      return { outputs: [sparsekForwardWebGPU(z.backend as unknown as WebGPUBackend, z, a.R, a.m, a.k)] };
    }
    const p = sparsekForwardCpu(z.dataSync() as FloatArray, a.R, a.m, a.k);
    return { outputs: [tensor(p, [...z.shape], { dtype: z.dtype, backend: z.backend })] };
  },
  backward([g], _saved, [z], [p], a) {
    if (!g) return [null];
    if (z.backend.name === 'webgpu') return [sparsekBackwardWebGPU(z.backend as unknown as WebGPUBackend, p, g, a.R, a.m)];
    const dz = sparsekBackwardCpu(p.dataSync() as FloatArray, g.dataSync() as FloatArray, a.R, a.m);
    return [tensor(dz, [...z.shape], { dtype: z.dtype, backend: z.backend })];
  },
  saveInputs: false,
});

/**
 * SPARSEK, row-wise over the last axis: `p = argmin ‖p − z‖²` subject to `0 ≤ p ≤ 1`, `Σp = k`,
 * i.e. `p = clip(z − τ, 0, 1)` with one threshold τ per row (`k ≥ m` gives all ones). `k` is a
 * number > 0 or one integer > 0 per row (`z.size / m` of them, rows in row-major order).
 * Differentiable: `dz_i = s_i (g_i − mean_{j∈S} g_j)` with `S = {0 < p < 1}` (zero for a hard
 * top-k row). float32 or float64 on the CPU, float32 on WebGPU.
 */
export function sparsek(z: Tensor, k: SparsekBudget, opts: SparsekOptions = {}): Tensor {
  checkFloat(OP, 'z', z);
  checkOpts(OP, opts);
  const impl = checkImpl(OP, opts.impl);
  if (z.rank < 1) fail(OP, `z must have at least one axis (rows along the last), got ${z.dtype}${fmtShape(z.shape)}`);
  const m = z.shape[z.rank - 1];
  const R = m === 0 ? 0 : z.size / m;
  const kRow = checkBudget(OP, 'k', k, R);
  if (impl === 'reference') {
    const kt = tensor(Float64Array.from(kRow), [...z.shape.slice(0, -1), 1], { dtype: z.dtype, backend: z.backend });
    const p = sparsekReference(z, kt);
    kt.dispose();
    return p;
  }
  const name = z.backend.name;
  if (name !== 'cpu' && name !== 'webgpu') fail(OP, `no fused kernel for the ${name} backend; use opts.impl: 'reference'`);
  if (R === 0 || m === 0) return tensor(new Float32Array(0), [...z.shape], { dtype: z.dtype, backend: z.backend });
  return fusedOp([z], { R, m, k: kRow })[0];
}
