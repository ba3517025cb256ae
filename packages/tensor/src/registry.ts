import type { Backend } from './backend.js';
import { CpuBackend } from './backends/cpu/backend.js';
import { fail } from './errors.js';
import { registerBackendForStats } from './memory.js';

/** Backends by name. The CPU backend always exists; WebGPU registers itself in `initWebGPU()`. */
const backends = new Map<string, Backend>();
let defaultName = 'cpu';

export function registerBackend(b: Backend): void {
  backends.set(b.name, b);
  registerBackendForStats(b);
}

export function unregisterBackend(name: string): void {
  backends.delete(name);
  if (defaultName === name) defaultName = 'cpu';
}

export function getBackend(name?: string | Backend): Backend {
  if (name !== undefined && typeof name !== 'string') return name;
  const n = name ?? defaultName;
  if (n === 'cpu' && !backends.has('cpu')) registerBackend(new CpuBackend());
  const b = backends.get(n);
  if (!b) {
    fail(
      'getBackend',
      n === 'webgpu'
        ? "the 'webgpu' backend is not initialised: call `await initWebGPU()` first"
        : `unknown backend '${n}' (known: ${[...backends.keys(), 'cpu'].join(', ')})`,
    );
  }
  return b;
}

/** Makes `name` the backend that creation functions use when none is given. */
export function setDefaultBackend(name: string): void {
  getBackend(name);
  defaultName = name;
}

export function defaultBackendName(): string {
  return defaultName;
}

export function listBackends(): string[] {
  getBackend('cpu');
  return [...backends.keys()];
}
