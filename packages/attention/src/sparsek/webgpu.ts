import { fail, fmtShape, type Tensor, tensor, type WebGPUBackend } from '@foxgate/tensor';
import { sparsekBackwardWGSL, sparsekForwardWGSL, sparsekThreads } from './wgsl.js';

/**
 * Launches the SPARSEK kernels of `wgsl.ts` through the WebGPU backend's `runKernel`: float32
 * tensors `[R,m]` (any view: non-contiguous ones are copied by `runKernel`), one workgroup per row.
 */

const codes = new Map<string, string>();
function code(kind: 'fwd' | 'bwd', m: number): string {
  const wg = sparsekThreads(m);
  const key = `${kind}:${wg}`;
  let c = codes.get(key);
  if (!c) {
    c = kind === 'fwd' ? sparsekForwardWGSL(wg) : sparsekBackwardWGSL(wg);
    codes.set(key, c);
  }
  return c;
}

function checkF32(op: string, x: Tensor): void {
  if (x.dtype !== 'float32') fail(op, `the WebGPU kernels take float32, got ${x.dtype}${fmtShape(x.shape)} (float64 runs on the CPU)`);
}

/** `p [R,m]` from `z [R,m]` and the per-row budget `k` (host values, uploaded as float32). */
export function sparsekForwardWebGPU(backend: WebGPUBackend, z: Tensor, R: number, m: number, k: Float64Array): Tensor {
  checkF32('sparsek', z);
  const kk = tensor(Float32Array.from(k), [R], { dtype: 'float32', backend: z.backend });
  const [p] = backend.runKernelTensors({
    name: 'sparsek_forward',
    code: code('fwd', m),
    inputs: [
      { name: 'z', data: z },
      { name: 'kk', data: kk },
    ],
    outputs: [{ name: 'p', shape: [...z.shape], dtype: 'float32' }],
    uniforms: { u32: { m } },
    workgroups: R,
  });
  kk.dispose();
  return p;
}

/** `dz [R,m]` from the forward's `p` and the incoming gradient `g`. */
export function sparsekBackwardWebGPU(backend: WebGPUBackend, p: Tensor, g: Tensor, R: number, m: number): Tensor {
  checkF32('sparsek', g);
  const [dz] = backend.runKernelTensors({
    name: 'sparsek_backward',
    code: code('bwd', m),
    inputs: [
      { name: 'p', data: p },
      { name: 'g', data: g },
    ],
    outputs: [{ name: 'dz', shape: [...p.shape], dtype: 'float32' }],
    uniforms: { u32: { m } },
    workgroups: R,
  });
  return dz;
}
