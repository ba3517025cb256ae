import { afterAll } from 'vitest';
import type { Backend } from '../../src/backend.js';
import { getBackend } from '../../src/registry.js';
import { testWebGPU } from './webgpu.js';

/**
 * The backends every op test runs on: CPU always, WebGPU when an adapter exists (see
 * `testWebGPU`: skipped with one line otherwise, a failure when FOXGATE_REQUIRE_WEBGPU=1).
 */
export async function testBackends(): Promise<Backend[]> {
  const list: Backend[] = [getBackend('cpu')];
  const gpu = await testWebGPU();
  if (gpu) list.push(gpu as unknown as Backend);
  return list;
}

export { afterAll };
