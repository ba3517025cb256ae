import { valueAndGrad } from '@foxgate/autograd';
import { type Backend, mul, sum, type Tensor, tensor } from '@foxgate/tensor';
import { expect } from 'vitest';
import { sparsek } from '../../src/sparsek/op.js';
import { type GoldenCase, mismatch } from './golden.js';

/**
 * One `kind: sparsek` golden case (`z, p, g, dz: [R,m]`, integer `k`): p = sparsek(z, k) and
 * dz = VJP(g), in float32 like the forgetting cases, within |a − b| ≤ 1e-4 + 1e-3·|b|.
 */
export async function runSparsekGolden(c: GoldenCase, backend: Backend | string, impl: 'fused' | 'reference'): Promise<void> {
  const t = (name: string): Tensor => {
    const g = c.tensors.get(name);
    if (!g) throw new Error(`case ${c.name} has no tensor ${name}`);
    return tensor(Float32Array.from(g.data), g.shape, { backend });
  };
  const k = c.meta.k;
  if (typeof k !== 'number') throw new Error(`case ${c.name}: manifest has no numeric k`);
  const [z, g] = ['z', 'g'].map(t);
  const { value, aux, grads } = valueAndGrad((x: Tensor) => {
    const p = sparsek(x, k, { impl });
    return { loss: sum(mul(p, g)), aux: p };
  })(z);
  expect(mismatch(await aux.data(), c.tensors.get('p')!.data), `${c.name} p`).toBeNull();
  expect(mismatch(await grads.data(), c.tensors.get('dz')!.data), `${c.name} dz`).toBeNull();
  for (const x of [z, g, value, aux, grads]) x.dispose();
}
