/** The WebGPU backend: device setup, engine, kernels and the custom-kernel launch API. */

export { type AdapterDescription, WebGPUBackend } from './backend.js';
export {
  describeAdapter,
  destroyWebGPU,
  type InitWebGPUOptions,
  initWebGPU,
  probeWebGPU,
  type WebGPUProbe,
  webgpuInstance,
} from './device.js';
export { Engine, GpuStorage } from './engine.js';
export { MATMUL_CONFIGS, type MatmulConfig, setMatmulConfig } from './kernels/matmul.js';
export {
  type DispatchProfile,
  KERNEL_FAMILIES,
  type KernelFamily,
  type KernelTime,
  kernelFamily,
  type ProfileOptions,
} from './profiler.js';
export type { KernelInput, KernelOutput, KernelSpec } from './run-kernel.js';
export { foldGrid, PRELUDE as WGSL_PRELUDE, wgslType } from './wgsl.js';
