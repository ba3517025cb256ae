import type { Tensor } from '@foxgate/tensor';
import { type CpuKernels, defineFusedOp, type HostTensor, type WebGPUKernels } from '../op.js';
import { type SkAttrs, sparsekAttnBackwardCpu, sparsekAttnForwardCpu } from './attention-cpu.js';
import { sparsekAttentionReference } from './attention-reference.js';
import { sparsekAttnForwardWebGPU } from './attention-webgpu.js';
import { sparsekAttnBackwardWebGPU } from './attention-wgsl-backward.js';

/**
 * SPARSEK attention as a fused op: inputs `[q, k, v, u]`, output `[o]`; the kernels save the
 * log-normalisers and thresholds `[B,H,T]` (float64 from the CPU kernels, float32 from the
 * WebGPU ones) for the backward, which reuses τ instead of projecting again.
 */

const sparsekCpuKernels: CpuKernels<SkAttrs> = {
  forward(inputs, a) {
    const [q, k, v, u] = inputs as HostTensor[];
    const { B, T, H } = a.dims;
    const r = sparsekAttnForwardCpu(q.data, k.data, v.data, u.data, a);
    return {
      outputs: [{ data: r.o, shape: q.shape }],
      saved: [
        { data: r.lse, shape: [B, H, T] },
        { data: r.tau, shape: [B, H, T] },
      ],
    };
  },
  backward(gout, saved, inputs, _outputs, a) {
    const [q, k, v, u] = inputs as HostTensor[];
    const dO = gout[0];
    if (!dO) return [null, null, null, null];
    const g = sparsekAttnBackwardCpu(q.data, k.data, v.data, u.data, dO.data, saved[0].data, saved[1].data, a);
    return [
      { data: g.dq, shape: q.shape },
      { data: g.dk, shape: k.shape },
      { data: g.dv, shape: v.shape },
      { data: g.du, shape: u.shape },
    ];
  },
};

const sparsekWebGPUKernels: WebGPUKernels<SkAttrs> = {
  forward(backend, inputs, a) {
    const [q, k, v, u] = inputs as Tensor[];
    const r = sparsekAttnForwardWebGPU(backend, { q, k, v, u }, a);
    return { outputs: [r.o], saved: [r.lse, r.tau] };
  },
  backward(backend, gout, saved, inputs, outputs, a) {
    const dO = gout[0];
    if (!dO) return [null, null, null, null];
    // the backward kernel takes contiguous tensors (views of contiguous ones are free)
    const [q, k, v, u, o, d] = [...(inputs as Tensor[]), outputs[0], dO].map((x) => (x.isContiguous ? x : x.contiguous()));
    const g = sparsekAttnBackwardWebGPU(backend, { q, k, v, u, dO: d, o, lse: saved[0], tau: saved[1] }, a);
    return [g.dq, g.dk, g.dv, g.du];
  },
};

export const sparsekAttentionOp = defineFusedOp<SkAttrs>({
  name: 'sparsekAttention',
  reference(inputs, a) {
    const [q, k, v, u] = inputs as Tensor[];
    return [sparsekAttentionReference(q, k, v, u, a)];
  },
  cpu: sparsekCpuKernels,
  webgpu: sparsekWebGPUKernels,
});
