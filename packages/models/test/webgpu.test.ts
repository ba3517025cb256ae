import { type Backend, dispose, rngKey, type Tensor, tensor } from '@foxgate/tensor';
import { afterAll, describe, expect, it } from 'vitest';
import { destroyTestWebGPU, testWebGPU } from '../../tensor/test/util/webgpu.js';
import { initLinear, initRMSNorm, initSwiGLU, linear, rmsNormLayer, swiglu } from '../src/index.js';
import { maxDiff, values } from './util.js';

const gpu = (await testWebGPU()) as unknown as Backend | null;
afterAll(destroyTestWebGPU);

/** The same float32 input on a backend. */
const input = (shape: number[], backend: string | Backend) =>
  tensor(
    Float32Array.from(
      values(
        shape.reduce((a, b) => a * b, 1),
        77,
      ),
    ),
    shape,
    { dtype: 'float32', backend },
  );

describe.skipIf(!gpu)('the same forward on WebGPU and on the CPU (float32)', () => {
  const run = async (f: (backend: string | Backend) => Tensor[]) => {
    const [c, g] = [f('cpu'), f(gpu as Backend)];
    const [yc, yg] = [c[c.length - 1], g[g.length - 1]];
    expect(yg.backend.name).toBe('webgpu');
    expect(yg.shape).toEqual(yc.shape);
    const d = maxDiff(await yg.data(), await yc.data());
    dispose([c, g]);
    return d;
  };

  it('init: the same key gives bit-identical weights on both backends', async () => {
    const wc = initLinear(rngKey(8), 32, 16, { backend: 'cpu' }).w;
    const wg = initLinear(rngKey(8), 32, 16, { backend: gpu as Backend }).w;
    expect([...(await wg.data())]).toEqual([...(await wc.data())]);
    dispose([wc, wg]);
  });

  it('linear with bias', async () => {
    const d = await run((backend) => {
      const p = initLinear(rngKey(1), 32, 48, { bias: true, backend });
      const x = input([2, 5, 32], backend);
      return [p.w, p.b as Tensor, x, linear(p, x)];
    });
    expect(d).toBeLessThan(1e-5);
  });

  it('swiglu', async () => {
    const d = await run((backend) => {
      const p = initSwiGLU(rngKey(2), 32, 64, { backend });
      const x = input([2, 5, 32], backend);
      return [p.gate.w, p.up.w, p.down.w, x, swiglu(p, x)];
    });
    expect(d).toBeLessThan(1e-5);
  });

  it('rmsNormLayer', async () => {
    const d = await run((backend) => {
      const p = initRMSNorm(32, { backend });
      const x = input([2, 5, 32], backend);
      return [p.g, x, rmsNormLayer(p, x)];
    });
    expect(d).toBeLessThan(1e-5);
  });
});
