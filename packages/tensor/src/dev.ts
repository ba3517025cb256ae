/**
 * @foxgate/tensor/dev — for benchmarks, GPU scripts and tests, not for applications: the
 * WebGPU matmul tile configurations and the process-wide override of the automatic choice.
 */

export { MATMUL_CONFIGS, type MatmulConfig, setMatmulConfig } from './backends/webgpu/index.js';
