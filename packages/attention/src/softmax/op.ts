import { full, type Tensor } from '@foxgate/tensor';
import { type FoxAttrs, foxCpuKernels, foxWebGPUKernels } from '../forgetting/op.js';
import { defineFusedOp } from '../op.js';
import { windowTiles } from '../stats.js';
import { softmaxReference } from './reference.js';

/**
 * Causal softmax attention as a fused op: inputs `[q, k, v]`, outputs `[o]` (then
 * `computedBlocks` with `stats`: every causal tile, those of the window with one). Its kernels are forgetting attention's
 * (`forgetting/cpu.ts`, `forgetting/webgpu.ts`) run without forget gates, which they specialise
 * away (no Λ reads, no dlogF).
 */
export const softmaxOp = defineFusedOp<FoxAttrs>({
  name: 'softmaxAttention',
  reference(inputs, a) {
    const [q, k, v] = inputs as Tensor[];
    const out = softmaxReference(q, k, v, a.dims, a.scale, a.window);
    return a.stats ? [out, full([], windowTiles(a.dims, a.window), { backend: q.backend })] : [out];
  },
  cpu: foxCpuKernels,
  webgpu: foxWebGPUKernels,
  stats: ['computedBlocks'],
});
