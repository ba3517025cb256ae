import { valueAndGrad } from '@foxgate/autograd';
import { type Backend, mul, sum, type Tensor, tensor } from '@foxgate/tensor';
import { destroyTestWebGPU, testWebGPU } from '@foxgate/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { forgettingAttention } from '../src/index.js';
import { type GoldenCase, goldenFile, loadGolden, mismatch } from './util/golden.js';
import { runSparsekGolden } from './util/sparsek-golden.js';

/**
 * Every case of the fixture file (env FOXGATE_GOLDEN_FILE, default the public one), dispatched
 * on `kind`, for every implementation: o and all four gradients within |a−b| ≤ 1e-4 + 1e-3·|b|.
 * `sparsek` cases check p and dz (util/sparsek-golden.ts). Kinds not implemented yet are skipped by name.
 */
const cases = loadGolden(goldenFile());
const gpu = await testWebGPU();
afterAll(destroyTestWebGPU);

interface Impl {
  name: string;
  backend: () => Backend | string;
  impl: 'fused' | 'reference';
}
const impls: Impl[] = [
  { name: 'reference (cpu)', backend: () => 'cpu', impl: 'reference' },
  { name: 'fused (cpu)', backend: () => 'cpu', impl: 'fused' },
];
if (gpu) impls.push({ name: 'fused (webgpu)', backend: () => gpu as unknown as Backend, impl: 'fused' });

async function runForgetting(c: GoldenCase, im: Impl): Promise<void> {
  const backend = im.backend();
  const t = (name: string): Tensor => {
    const g = c.tensors.get(name);
    if (!g) throw new Error(`case ${c.name} has no tensor ${name}`);
    return tensor(Float32Array.from(g.data), g.shape, { backend });
  };
  const [q, k, v, logf, dO] = ['q', 'k', 'v', 'logf', 'do'].map(t);
  const acpDelta = c.tensors.has('acp_delta') ? t('acp_delta') : null;
  const acpMeta = c.meta.acp as { log_eps?: number } | undefined;
  const acp = acpDelta ? { delta: acpDelta } : acpMeta?.log_eps !== undefined ? { logEps: acpMeta.log_eps } : false;
  const scale = c.meta.sm_scale as number | undefined;
  const f = (p: { q: Tensor; k: Tensor; v: Tensor; logf: Tensor }) => {
    const o = forgettingAttention(p.q, p.k, p.v, p.logf, { scale, acp, impl: im.impl });
    return { loss: sum(mul(o, dO)), aux: o };
  };
  const { value, aux, grads } = valueAndGrad(f)({ q, k, v, logf });
  const check = async (what: string, x: Tensor, ref: string) => {
    const msg = mismatch(await x.data(), c.tensors.get(ref)!.data);
    expect(msg, `${c.name} ${what}`).toBeNull();
  };
  await check('o', aux, 'o');
  await check('dq', grads.q, 'dq');
  await check('dk', grads.k, 'dk');
  await check('dv', grads.v, 'dv');
  await check('dlogf', grads.logf, 'dlogf');
  for (const x of [q, k, v, logf, dO, acpDelta, value, aux, grads.q, grads.k, grads.v, grads.logf]) x?.dispose();
}

for (const im of impls) {
  describe(im.name, () => {
    for (const c of cases) {
      if (c.kind === 'forgetting_attention') it(c.name, () => runForgetting(c, im));
      else if (c.kind === 'sparsek') it(c.name, () => runSparsekGolden(c, im.backend(), im.impl));
      else it.skip(c.name, () => {});
    }
  });
}
