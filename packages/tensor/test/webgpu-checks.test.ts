import { afterAll, describe, expect, it } from 'vitest';
import { FoxgateError } from '../src/errors.js';
import { tensor } from '../src/ops/creation.js';
import { gt, max } from '../src/ops/index.js';
import { destroyTestWebGPU, testWebGPU } from './util/webgpu.js';

/**
 * Deferred device-side checks (`backend.checkLater`): a flag computed on the GPU is read with the
 * next readback of any tensor (or at `sync()`), which then throws the check's FoxgateError;
 * nothing waits when the check is registered, and each check is read once.
 */
const gpu = await testWebGPU();
afterAll(destroyTestWebGPU);

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

describe.skipIf(!gpu)('checkLater', () => {
  const g = () => gpu as NonNullable<typeof gpu>;
  const on = (data: number[], dtype: 'float32' | 'int32' | 'uint32' | 'bool' = 'float32', shape = [data.length]) =>
    tensor(data, shape, { dtype, backend: g() });

  it('a failed flag makes the next readback of any tensor throw its one line, once', async () => {
    const x = on([5, -1, 2]);
    const other = on([1, 2, 3]);
    const flag = gt(max(x), 0); // computed on the device: true
    g().checkLater(flag, 'myOp', 'x has positive values (checked at the next readback)');
    flag.dispose(); // the value was taken at the call
    expect(g().engine.deviceChecks.size).toBe(1);
    const err = await rejection(other.data());
    expect(err).toBeInstanceOf(FoxgateError);
    expect(err.message).toBe('myOp: x has positive values (checked at the next readback)');
    expect(g().engine.deviceChecks.size).toBe(0);
    // consumed: the next readback returns normally
    expect(Array.from(await other.data())).toEqual([1, 2, 3]);
    for (const t of [x, other]) t.dispose();
  });

  it('passing flags never throw, and the data read with them is intact (odd byte counts too)', async () => {
    const a = on([1.5, -2, 3]); // 12 bytes: the check words follow at byte 16
    for (const [v, dtype] of [
      [0, 'float32'],
      [0, 'int32'],
      [0, 'uint32'],
      [0, 'bool'],
    ] as const) {
      const f = on([v], dtype, []);
      g().checkLater(f, `zero ${dtype}`, 'never');
      f.dispose();
    }
    expect(g().engine.deviceChecks.size).toBe(4);
    expect(Array.from(await a.data())).toEqual([1.5, -2, 3]);
    expect(g().engine.deviceChecks.size).toBe(0);
    await g().sync();
    a.dispose();
  });

  it('nonzero and NaN flags of every dtype fail; the first registered failure is the one thrown', async () => {
    const a = on([7]);
    for (const [v, dtype] of [
      [Number.NaN, 'float32'],
      [-3, 'int32'],
      [4, 'uint32'],
      [1, 'bool'],
    ] as const) {
      const f = on([v], dtype, [1]);
      g().checkLater(f, 'op', `${dtype} failed`);
      f.dispose();
    }
    expect((await rejection(a.item())).message).toBe('op: float32 failed');
    expect(g().engine.deviceChecks.size).toBe(0); // all four were read
    expect(await a.item()).toBe(7);
    a.dispose();
  });

  it('repeated checks with one message fold into one pending word; a single failure among them is kept', async () => {
    const ok = on([0], 'bool', []);
    const bad = on([1], 'bool', []);
    for (let i = 0; i < 50; i++) g().checkLater(i === 17 ? bad : ok, 'loop', 'step failed');
    for (let i = 0; i < 50; i++) g().checkLater(ok, 'loop', 'another check');
    expect(g().engine.deviceChecks.size).toBe(2);
    expect((await rejection(ok.data())).message).toBe('loop: step failed');
    for (let i = 0; i < 50; i++) g().checkLater(ok, 'loop', 'step failed');
    await ok.data(); // all passing now
    for (const t of [ok, bad]) t.dispose();
  });

  it('sync() reads pending checks (and throws a failed one)', async () => {
    const f = on([2], 'int32', []);
    g().checkLater(f, 'syncOp', 'failed at sync');
    f.dispose();
    expect((await rejection(g().sync())).message).toBe('syncOp: failed at sync');
    await g().sync();
  });

  it('rejects flags that are not one element on this backend', () => {
    const two = on([0, 0]);
    expect(() => g().checkLater(two, 'op', 'm')).toThrow(/^checkLater: the flag must have one element, got shape \[2\]$/);
    const host = tensor([0], [1]);
    expect(() => g().checkLater(host, 'op', 'm')).toThrow(/^checkLater: the flag lives on the cpu backend/);
    for (const t of [two, host]) t.dispose();
  });
});
