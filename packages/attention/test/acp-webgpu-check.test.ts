import { type Tensor, tensor } from '@foxgate/tensor';
import { destroyTestWebGPU, rejectsNaming, testWebGPU } from '@foxgate/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { forgettingAttention } from '../src/index.js';
import { normals, problem } from './util/fox.js';

/**
 * Positive logF with ACP on WebGPU: an error, as on the CPU, without a readback per call: the
 * sign is checked on the device and the next readback of any tensor throws (`checkLater`); the
 * call itself runs unpruned, so its result is the exact one.
 */
const gpu = await testWebGPU();
afterAll(destroyTestWebGPU);

const MESSAGE = /^forgettingAttention: logF has positive values but ACP needs logF ≤ 0 .*\(checked at the next readback\)$/;

describe.skipIf(!gpu)('positive logF with ACP on WebGPU (a deferred device check)', () => {
  const p = problem(1, 130, 130, 2, 8, 5, [-3, 1], 0.5);
  const on = (a: Float64Array, shape: number[]) => tensor(Float32Array.from(a), shape, { backend: gpu as never });
  const q = () => on(p.q, [1, 130, 2, 8]);
  const positive = Float64Array.from(p.logF, (x, i) => (i === 77 ? 0.5 : x));

  it.each(['fused', 'reference'] as const)(
    'the next readback throws that one line, once; the result is the unpruned one (%s)',
    async (impl) => {
      const [qq, kk, vv] = [q(), on(p.k, [1, 130, 2, 8]), on(p.v, [1, 130, 2, 8])];
      const bad = on(positive, [1, 130, 2]);
      const out = forgettingAttention(qq, kk, vv, bad, { acp: true, impl }); // no error yet: nothing was read
      const unrelated = on(normals(3, 9), [3]);
      await rejectsNaming(unrelated.data(), MESSAGE); // any tensor's readback surfaces it
      const exact = forgettingAttention(qq, kk, vv, bad, { impl });
      expect(Array.from(await out.data())).toEqual(Array.from(await exact.data())); // consumed: reads work again
      for (const t of [qq, kk, vv, bad, out, unrelated, exact]) t.dispose();
    },
  );

  it('with stats: all tiles computed, and the error at the readback of the stats', async () => {
    const [qq, kk, vv] = [q(), on(p.k, [1, 130, 2, 8]), on(p.v, [1, 130, 2, 8])];
    const bad = on(positive, [1, 130, 2]);
    const { out, stats } = forgettingAttention(qq, kk, vv, bad, { acp: { delta: -1 }, stats: true });
    await rejectsNaming(stats.fraction.item(), MESSAGE);
    expect(await stats.fraction.item()).toBe(1);
    for (const t of [qq, kk, vv, bad, out, stats.fraction, stats.computedBlocks]) t.dispose();
  });

  it('valid logF (≤ 0, zeros included) never throws, and prunes', async () => {
    const [qq, kk, vv] = [q(), on(p.k, [1, 130, 2, 8]), on(p.v, [1, 130, 2, 8])];
    const good = on(
      Float64Array.from(p.logF, (x, i) => (i % 7 === 0 ? 0 : x)),
      [1, 130, 2],
    );
    const results: Tensor[] = [];
    for (let i = 0; i < 3; i++) {
      const { out, stats } = forgettingAttention(qq, kk, vv, good, { acp: { delta: -1 }, stats: true });
      results.push(out, stats.computedBlocks);
      expect(await stats.fraction.item()).toBeLessThan(1);
      stats.fraction.dispose();
    }
    await (gpu as NonNullable<typeof gpu>).sync();
    for (const t of [qq, kk, vv, good, ...results]) t.dispose();
  });
});
