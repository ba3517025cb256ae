import { tmpdir } from 'node:os';
import { initWebGPU, type WebGPUBackend } from '@foxgate/tensor';

/**
 * The WebGPU backend for the tests of every package. Initialised once per test file (vitest
 * gives each file its own module graph). Without an adapter: fails when
 * FOXGATE_REQUIRE_WEBGPU=1, otherwise prints one line `WebGPU tests skipped: <reason>` and
 * returns null (use `describe.skipIf(!gpu)` / `it.skipIf(!gpu)`). Destroy the device in
 * `afterAll(destroyTestWebGPU)` so the worker process can exit.
 */
let pending: Promise<WebGPUBackend | null> | null = null;
let backend: WebGPUBackend | null = null;

export function testWebGPU(): Promise<WebGPUBackend | null> {
  pending ??= (async () => {
    // lavapipe (software Vulkan) needs a runtime dir; harmless elsewhere
    process.env.XDG_RUNTIME_DIR ??= tmpdir();
    try {
      backend = await initWebGPU();
      return backend;
    } catch (e) {
      const reason = (e as Error).message;
      if (process.env.FOXGATE_REQUIRE_WEBGPU === '1') {
        throw new Error(`FOXGATE_REQUIRE_WEBGPU=1 but WebGPU is unavailable: ${reason}`);
      }
      console.log(`WebGPU tests skipped: ${reason}`);
      return null;
    }
  })();
  return pending;
}

/** Destroys the test device (for `afterAll`); a later `testWebGPU()` creates a new one. */
export async function destroyTestWebGPU(): Promise<void> {
  const b = backend;
  backend = null;
  pending = null;
  if (b) await b.destroy();
}
