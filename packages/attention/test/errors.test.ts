import { valueAndGrad } from '@foxgate/autograd';
import { abs, CpuBackend, memoryStats, mul, sum, type Tensor, tensor, zeros } from '@foxgate/tensor';
import { destroyTestWebGPU, testWebGPU, throwsNaming } from '@foxgate/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { forgettingAttention, softmaxAttention } from '../src/index.js';
import { normals } from './util/fox.js';

const gpu = await testWebGPU();
afterAll(destroyTestWebGPU);

const z = (shape: number[], dtype: 'float32' | 'float64' | 'int32' = 'float32') => zeros(shape, { dtype });
const q = z([1, 8, 2, 4]);
const k = z([1, 8, 2, 4]);
const v = z([1, 8, 2, 4]);
const logF = z([1, 8, 2]);

describe('bad inputs give one FoxgateError naming the argument and shapes', () => {
  it('mismatched shapes', () => {
    throwsNaming(() => forgettingAttention(q, k, z([1, 8, 2, 5]), logF), /^forgettingAttention: /, 'v [1,8,2,5]', 'k [1,8,2,4]');
    throwsNaming(() => forgettingAttention(q, z([1, 8, 3, 4]), z([1, 8, 3, 4]), logF), 'q [1,8,2,4]', 'k [1,8,3,4]');
    throwsNaming(() => forgettingAttention(q, k, v, z([1, 8, 3])), 'logF', '[1,8,2]', '[1,8,3]');
    throwsNaming(() => forgettingAttention(z([8, 2, 4]), k, v, logF), 'q', '[B,Tq,H,D]', '[8,2,4]');
    throwsNaming(() => forgettingAttention(z([2, 8, 2, 4]), k, v, logF), 'q [2,8,2,4]', 'k [1,8,2,4]');
  });

  it('names the tensor that is off: k with the wrong head dim is k, not v', () => {
    const msg = throwsNaming(() => forgettingAttention(q, z([1, 8, 2, 5]), v, logF), /^forgettingAttention: k \[1,8,2,5\]/, 'q [1,8,2,4]');
    expect(msg).not.toMatch(/^forgettingAttention: v/);
    throwsNaming(() => softmaxAttention(q, k, z([1, 7, 2, 4])), /^softmaxAttention: v \[1,7,2,4\]/, 'k [1,8,2,4]');
  });

  it('Tq > Tk', () => {
    throwsNaming(() => forgettingAttention(z([1, 9, 2, 4]), k, v, logF), 'Tq=9 > Tk=8', 'q [1,9,2,4]');
  });

  it('D > 256', () => {
    const big = z([1, 2, 1, 257]);
    throwsNaming(() => softmaxAttention(big, big, big), /^softmaxAttention: /, 'D=257', '256');
  });

  it('mismatched dtypes and non-tensors', () => {
    throwsNaming(() => forgettingAttention(q, z([1, 8, 2, 4], 'float64'), v, logF), 'k', 'float64[1,8,2,4]', 'float32[1,8,2,4]');
    throwsNaming(
      () => forgettingAttention(z([1, 8, 2, 4], 'int32'), z([1, 8, 2, 4], 'int32'), z([1, 8, 2, 4], 'int32'), z([1, 8, 2], 'int32')),
      'float32 or float64',
      'int32',
    );
    throwsNaming(() => forgettingAttention(q, k, v, [1, 2] as unknown as Tensor), 'logF must be a Tensor', 'array');
  });

  it.skipIf(!gpu)('mismatched backends', () => {
    const g = zeros([1, 8, 2, 4], { backend: gpu as never });
    throwsNaming(() => forgettingAttention(q, g, v, logF), 'k', 'webgpu', 'cpu');
    g.dispose();
  });

  it('ACP options', () => {
    throwsNaming(() => forgettingAttention(q, k, v, logF, { acp: { logEps: 1 } }), 'logEps', '≤ 0', '1');
    throwsNaming(() => forgettingAttention(q, k, v, logF, { acp: { delta: z([3]) } }), 'delta [3]', 'broadcastable to [B,H] = [1,2]');
    throwsNaming(() => forgettingAttention(q, k, v, logF, { acp: { delta: z([1, 2, 1]) } }), 'delta [1,2,1]');
    throwsNaming(() => forgettingAttention(q, k, v, logF, { acp: 'yes' as never }), 'opts.acp');
    throwsNaming(() => softmaxAttention(q, k, v, { acp: true } as never), 'acp needs forget gates');
  });

  it('unknown option keys, and options of the wrong type', () => {
    throwsNaming(() => forgettingAttention(q, k, v, logF, { acpp: true } as never), 'unknown option opts.acpp', 'acp', 'deterministic');
    throwsNaming(
      () => forgettingAttention(q, k, v, logF, { acp: { logeps: -5 } } as never),
      'unknown option opts.acp.logeps',
      'logEps, delta',
    );
    throwsNaming(() => softmaxAttention(q, k, v, { scael: 1 } as never), /^softmaxAttention: unknown option opts.scael/);
    throwsNaming(() => forgettingAttention(q, k, v, logF, { stats: 1 } as never), 'opts.stats must be true or false');
    throwsNaming(() => forgettingAttention(q, k, v, logF, { deterministic: 'yes' } as never), 'opts.deterministic must be true or false');
    throwsNaming(() => forgettingAttention(q, k, v, logF, null as never), 'opts must be an object');
    // undefined values of known keys are the defaults
    forgettingAttention(q, k, v, logF, { impl: undefined, acp: undefined, deterministic: true }).dispose();
  });

  it('positive logF with ACP on (the CPU reads the values)', () => {
    const pos = tensor(
      Float32Array.from({ length: 16 }, (_, i) => (i === 5 ? 0.25 : -0.1)),
      [1, 8, 2],
    );
    for (const impl of ['fused', 'reference'] as const) {
      throwsNaming(
        () => forgettingAttention(q, k, v, pos, { acp: true, impl }),
        'logF has positive values (max 0.25)',
        'ACP needs logF ≤ 0',
      );
      throwsNaming(() => forgettingAttention(q, k, v, pos, { acp: { delta: -3 }, impl }), 'positive values');
    }
    forgettingAttention(q, k, v, pos).dispose(); // without ACP the formula needs no sign
    pos.dispose();
  });

  it('a backend without fused kernels is an error naming it, not a silent [T,T] fallback', () => {
    const cpu = new CpuBackend();
    const target = cpu as unknown as Record<string | symbol, unknown>;
    // a backend object that is not a CpuBackend: every method forwarded to one
    const plain = new Proxy(cpu, {
      getPrototypeOf: () => Object.prototype,
      get: (t, key) =>
        key === 'name' ? 'plain' : typeof target[key] === 'function' ? (target[key] as () => unknown).bind(t) : Reflect.get(t, key),
    });
    const t = (shape: number[]) => zeros(shape, { backend: plain as never });
    const [a, b, c, f] = [t([1, 8, 2, 4]), t([1, 8, 2, 4]), t([1, 8, 2, 4]), t([1, 8, 2])];
    throwsNaming(() => forgettingAttention(a, b, c, f), 'the plain backend has no fused kernel', "impl: 'reference'");
    throwsNaming(() => softmaxAttention(a, b, c), /^softmaxAttention: the plain backend has no fused kernel/);
    const r = forgettingAttention(a, b, c, f, { impl: 'reference' });
    expect(r.shape).toEqual([1, 8, 2, 4]);
    for (const x of [a, b, c, f, r]) x.dispose();
  });

  it('scale and impl', () => {
    throwsNaming(() => forgettingAttention(q, k, v, logF, { scale: Number.NaN }), 'opts.scale');
    throwsNaming(() => forgettingAttention(q, k, v, logF, { impl: 'fast' as never }), "'fused' or 'reference'", 'fast');
  });

  it('accepts broadcastable deltas', () => {
    for (const d of [z([2]), z([1, 1]), z([1, 2]), z([])]) forgettingAttention(q, k, v, logF, { acp: { delta: d } }).dispose();
  });
});

describe('memory', () => {
  const count = (name: string) => memoryStats().backends[name]?.tensors ?? 0;
  const backends: [string, () => unknown][] = [['cpu', () => 'cpu']];
  if (gpu) backends.push(['webgpu', () => gpu]);

  it.each(backends)('forward, backward and stats leave no live tensors behind (%s)', async (name, backend) => {
    const t = (n: number, shape: number[], seed: number) =>
      tensor(Float32Array.from(normals(n, seed)), shape, { backend: backend() as never });
    const raw = t(3 * 90 * 2, [3, 90, 2], 4);
    const mag = abs(raw);
    const ins = {
      q: t(3 * 70 * 2 * 8, [3, 70, 2, 8], 1),
      k: t(3 * 90 * 2 * 8, [3, 90, 2, 8], 2),
      v: t(3 * 90 * 2 * 8, [3, 90, 2, 8], 3),
      logF: mul(mag, -0.1), // ≤ 0, as ACP needs
    };
    const before = count(name);
    for (const impl of ['fused', 'reference'] as const) {
      const o = forgettingAttention(ins.q, ins.k, ins.v, ins.logF, { impl, acp: true });
      const r = forgettingAttention(ins.q, ins.k, ins.v, ins.logF, { impl, acp: true, stats: true });
      await r.stats.fraction.data();
      const { value, grads } = valueAndGrad((p: typeof ins) => sum(forgettingAttention(p.q, p.k, p.v, p.logF, { impl, acp: true })))(ins);
      await grads.logF.data();
      for (const x of [o, r.out, r.stats.fraction, r.stats.computedBlocks, value, grads.q, grads.k, grads.v, grads.logF]) x.dispose();
    }
    expect(count(name)).toBe(before);
    for (const x of [raw, mag, ins.q, ins.k, ins.v, ins.logF]) x.dispose();
  });
});
