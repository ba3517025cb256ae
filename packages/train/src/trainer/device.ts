import { type Backend, destroyWebGPU, FoxgateError, getBackend, initWebGPU, type WebGPUBackend } from '@foxgate/tensor';

export interface RunDevice {
  backend: Backend;
  /** 'cpu' or 'webgpu'. */
  name: 'cpu' | 'webgpu';
  /** One line: which device and why (for `auto`). */
  describe: string;
  /** Destroys a WebGPU device so the process can exit. */
  release(): Promise<void>;
}

/** Software adapters are slower than our CPU backend: `auto` passes them over. */
const SOFTWARE = /llvmpipe|lavapipe|swiftshader|software/i;

/**
 * The backend for `device`: 'cpu'; 'webgpu' (an error if there is none); 'auto' — a hardware
 * WebGPU adapter when there is one, else the CPU.
 */
export async function openDevice(device: 'cpu' | 'webgpu' | 'auto'): Promise<RunDevice> {
  const cpu: RunDevice = { backend: getBackend('cpu'), name: 'cpu', describe: 'cpu', release: async () => {} };
  if (device === 'cpu') return cpu;
  let gpu: WebGPUBackend;
  try {
    gpu = await initWebGPU();
  } catch (e) {
    if (device === 'webgpu') throw new FoxgateError(`train: --device webgpu: no WebGPU adapter (${(e as Error).message})`);
    return { ...cpu, describe: `cpu (auto: no WebGPU adapter: ${(e as Error).message})` };
  }
  const info = gpu.info;
  const label = info.description || [info.vendor, info.device].filter(Boolean).join(' ') || 'unknown adapter';
  if (device === 'auto' && SOFTWARE.test(label)) {
    await destroyWebGPU(gpu);
    return { ...cpu, describe: `cpu (auto: the only WebGPU adapter is software: ${label})` };
  }
  return { backend: gpu as unknown as Backend, name: 'webgpu', describe: `webgpu (${label})`, release: () => destroyWebGPU(gpu) };
}
