/**
 * @foxgate/tensor — tensors, the closed primitive op set, CPU and WebGPU backends, a
 * counter-based RNG and safetensors IO.
 */
export { Tensor, type NestedArray } from './tensor.js';
export * from './ops/index.js';
export type { DType, TypedArray } from './dtype.js';
export { DTYPES, isFloat, itemSize } from './dtype.js';
export type { Shape } from './shape.js';
export { broadcastShapes, contiguousStrides, sizeOf } from './shape.js';
export { FoxgateError, fail, fmtShape } from './errors.js';
export type { Backend, BackendMemory, Storage, View, UnaryOp, BinaryOp, ReduceOp, RandomKind } from './backend.js';
export { UNARY_OPS, BINARY_OPS, REDUCE_OPS } from './backend.js';
export { tidy, keep, dispose, memoryStats, forEachTensor, type MemoryStats } from './memory.js';
export { getBackend, setDefaultBackend, defaultBackendName, registerBackend, listBackends } from './registry.js';
export { setRecorder, getRecorder, type Prim, type PrimParams, type OpRecord, type Recorder } from './prims.js';
export { CpuBackend } from './backends/cpu/backend.js';
export * from './rng/index.js';
export * from './io/index.js';
