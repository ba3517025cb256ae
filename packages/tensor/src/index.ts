/**
 * @foxgate/tensor — tensors, the closed primitive op set, CPU and WebGPU backends, a
 * counter-based RNG and safetensors IO.
 */

export type { Backend, BackendMemory, BinaryOp, RandomKind, ReduceOp, Storage, UnaryOp, View } from './backend.js';
export { BINARY_OPS, REDUCE_OPS, UNARY_OPS } from './backend.js';
export { CpuBackend } from './backends/cpu/backend.js';
export {
  type AdapterDescription,
  type DispatchProfile,
  describeAdapter,
  destroyWebGPU,
  type InitWebGPUOptions,
  initWebGPU,
  KERNEL_FAMILIES,
  type KernelFamily,
  type KernelInput,
  type KernelOutput,
  type KernelSpec,
  type KernelTime,
  kernelFamily,
  type ProfileOptions,
  probeWebGPU,
  WebGPUBackend,
  type WebGPUProbe,
  webgpuInstance,
} from './backends/webgpu/index.js';
export type { DType, TypedArray } from './dtype.js';
export { DTYPES, isFloat, itemSize } from './dtype.js';
export { FoxgateError, fail, fmtShape } from './errors.js';
export * from './io/index.js';
export { isTensor } from './is-tensor.js';
export { dispose, emptyCache, forEachTensor, keep, type MemoryStats, memoryStats, resetPeakMemory, tidy } from './memory.js';
export * from './ops/index.js';
export { checkPrecision, MATMUL_PRECISIONS, type MatmulOptions, type MatmulPrecision } from './precision.js';
export { getRecorder, type OpRecord, type Prim, type PrimParams, type Recorder, setRecorder } from './prims.js';
export { defaultBackendName, getBackend, listBackends, registerBackend, setDefaultBackend } from './registry.js';
export * from './rng/index.js';
export type { Shape } from './shape.js';
export { broadcastShapes, contiguousStrides, sizeOf } from './shape.js';
export { type NestedArray, Tensor } from './tensor.js';
