import { afterAll, describe, expect, it } from 'vitest';
import type { RandomKind } from '../src/backend.js';
import { philoxRandom } from '../src/rng/philox.js';
import { destroyTestWebGPU, testWebGPU } from './util/webgpu.js';

const gpu = await testWebGPU();
afterAll(destroyTestWebGPU);

function bits(a: ArrayLike<number> & { buffer: ArrayBufferLike }): number[] {
  return Array.from(new Uint32Array(a.buffer, 0, a.length));
}

describe.skipIf(!gpu)('webgpu random (Philox-4x32-10)', () => {
  const keys: [number, number][] = [
    [0, 0],
    [1, 2],
    [0xffffffff, 0xffffffff],
    [0x12345678, 0x9abcdef0],
  ];
  const sizes = [0, 1, 2, 3, 5, 8, 1001, 20000];

  it('bits, uniform and normal streams are bit-identical to philoxRandom', async () => {
    for (const kind of ['bits', 'uniform', 'normal'] as RandomKind[]) {
      const dtype = kind === 'bits' ? 'uint32' : 'float32';
      for (const key of keys) {
        for (const n of sizes) {
          const s = gpu!.random(kind, key, n, dtype);
          const got = (await gpu!.read(s, dtype, n)) as Float32Array | Uint32Array;
          gpu!.free(s);
          const want = philoxRandom(kind, key, n, dtype) as Float32Array | Uint32Array;
          expect(bits(got), `${kind} key ${key} n ${n}`).toEqual(bits(want));
        }
      }
    }
  });

  it('a stream prefix does not depend on the requested length', async () => {
    const long = gpu!.random('normal', [7, 9], 4099, 'float32');
    const short = gpu!.random('normal', [7, 9], 3, 'float32');
    const a = (await gpu!.read(long, 'float32', 4099)) as Float32Array;
    const b = (await gpu!.read(short, 'float32', 3)) as Float32Array;
    expect(bits(b)).toEqual(bits(a.subarray(0, 3)));
    // sanity: the normals have mean ≈ 0 and variance ≈ 1
    let m = 0;
    let v = 0;
    for (const x of a) m += x / a.length;
    for (const x of a) v += (x - m) ** 2 / a.length;
    expect(Math.abs(m)).toBeLessThan(0.06);
    expect(Math.abs(v - 1)).toBeLessThan(0.08);
    gpu!.free(long);
    gpu!.free(short);
  });
});
