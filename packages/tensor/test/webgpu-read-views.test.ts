import { afterAll, describe, expect, it } from 'vitest';
import { randomNormal, slice } from '../src/index.js';
import { destroyTestWebGPU, testWebGPU } from './util/webgpu.js';

const gpu = await testWebGPU();
afterAll(destroyTestWebGPU);

describe.skipIf(!gpu)('data() of strided views on WebGPU', () => {
  it('concurrent reads each return their own view (the contiguous copy outlives the read)', async () => {
    const [B, T, H, D] = [3, 40, 4, 8];
    const x = randomNormal([7, 1], [B, T, H, D], { backend: gpu as never });
    const full = await x.data();
    const pairs = Array.from({ length: B * H }, (_, i) => [Math.floor(i / H), i % H] as const);
    const views = pairs.map(([b, h]) => slice(x, [b, null, h]));
    const got = await Promise.all(views.map((v) => v.data()));
    pairs.forEach(([b, h], n) => {
      const want = new Float32Array(T * D);
      for (let t = 0; t < T; t++) for (let d = 0; d < D; d++) want[t * D + d] = full[((b * T + t) * H + h) * D + d];
      expect(Array.from(got[n]), `view b=${b} h=${h}`).toEqual(Array.from(want));
    });
    for (const v of [x, ...views]) v.dispose();
  });
});
