/**
 * @foxgate/attention/dev — for benchmarks, GPU scripts and tests, not for applications: the
 * process-wide kernel configuration overrides of the WebGPU kernels, the configurations in use,
 * the fused-op scaffold, the kernel launchers (for per-kernel timing), and `PrefixSelector` (the
 * SPARSEK prefix projection that the decoding cache of `@foxgate/models` steps token by token).
 */

export { foxBackwardCpu, foxForwardCpu, lambdaCpu } from './forgetting/cpu.js';
export { type FoxTileOverrides, type FoxTiles, foxTilesFor, setFoxTiles } from './forgetting/tuning.js';
export { acpBoundsWebGPU, foxBackwardWebGPU, foxDeltaWebGPU, foxDlogfWebGPU, foxForwardWebGPU } from './forgetting/webgpu.js';
export { FOX_F16_DEFAULT, foxF16Config, setFoxF16 } from './forgetting/webgpu-f16.js';
export { FOX_F16_BWD_DEFAULT, foxF16BwdConfig, setFoxF16Bwd } from './forgetting/webgpu-f16-bwd.js';
export type { FoxF16Config } from './forgetting/wgsl-f16.js';
export type { FoxF16BwdConfig } from './forgetting/wgsl-f16-bwd.js';
export type { FoxTileConfig } from './forgetting/wgsl-tiled.js';
export type { FoxWideConfig } from './forgetting/wgsl-wide.js';
export {
  type CpuContext,
  type CpuKernels,
  defineFusedOp,
  type FusedOp,
  type FusedOpSpec,
  type Gemm,
  type HostMatrix,
  type HostTensor,
  jsGemm,
  type WebGPUKernels,
} from './op.js';
// the host SPARSEK threshold of one row, in float64 (benchmark checks), and the incremental prefix
// projection (the models package's bounded decoding cache steps it)
export { PrefixSelector, rowTau } from './sparsek/project.js';
