import { join } from 'node:path';
import { flattenTree, unflattenTree, valueAndGrad } from '@foxgate/autograd';
import { type Backend, dispose, readSafetensorsFile, type Tensor, tensor } from '@foxgate/tensor';
import { destroyTestWebGPU, testWebGPU } from '@foxgate/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { createModel, type ModelParams, modelConfig } from '../src/index.js';
import { modelFixtureFiles, modelFixturesDir, relMaxError } from './util.js';

const dir = modelFixturesDir();
const files = modelFixtureFiles();
const gpu = (await testWebGPU()) as unknown as Backend | null;
afterAll(destroyTestWebGPU);

interface Fixture {
  config: Record<string, unknown>;
  params: Map<string, Tensor>;
  grads: Map<string, Float32Array | Float64Array>;
  inputIds: Tensor;
  labels: Tensor;
  logits: Float32Array;
  loss: number;
}

async function load(file: string, backend: string | Backend): Promise<Fixture> {
  const c = await readSafetensorsFile(join(dir, file));
  const manifest = JSON.parse(c.metadata.manifest);
  const params = new Map<string, Tensor>();
  const grads = new Map<string, Float32Array | Float64Array>();
  const t = (name: string, dtype: 'float32' | 'int32') => {
    const e = c.tensors.get(name);
    if (!e) throw new Error(`${file}: no tensor ${name}`);
    return tensor(dtype === 'int32' ? Int32Array.from(e.data) : Float32Array.from(e.data), e.shape, { dtype, backend });
  };
  for (const [name, e] of c.tensors) {
    if (name.startsWith('param/')) params.set(name.slice(6), t(name, 'float32'));
    if (name.startsWith('grad/')) grads.set(name.slice(5), e.data as Float32Array);
  }
  return {
    config: manifest.config,
    params,
    grads,
    inputIds: t('input_ids', 'int32'),
    labels: t('labels', 'int32'),
    logits: c.tensors.get('logits')?.data as Float32Array,
    loss: Number(c.tensors.get('loss')?.data[0]),
  };
}

async function check(file: string, backend: string | Backend) {
  const f = await load(file, backend);
  const model = createModel(modelConfig(f.config));
  const params = unflattenTree<ModelParams>(f.params);
  const logits = model.forward(params, f.inputIds);
  expect(logits.shape).toEqual([f.inputIds.shape[0], f.inputIds.shape[1], model.config.vocab_size]);
  expect(relMaxError(await logits.data(), f.logits)).toBeLessThan(1e-4);
  const { value, grads } = valueAndGrad((p: ModelParams) => model.loss(p, f.inputIds, f.labels))(params);
  expect(Math.abs((await value.item()) - f.loss)).toBeLessThan(1e-5);
  const flat = flattenTree(grads);
  expect([...flat.keys()].sort()).toEqual([...f.grads.keys()].sort());
  for (const [name, want] of f.grads) {
    const got = await (flat.get(name) as Tensor).data();
    expect(relMaxError(got, want), `grad ${name}`).toBeLessThan(1e-3);
  }
  dispose([logits, value, grads, [...f.params.values()], f.inputIds, f.labels]);
}

describe('official model fixtures: logits, loss and every gradient (CPU)', () => {
  for (const file of files) it(file, () => check(file, 'cpu'));
});

describe.skipIf(!gpu)('official model fixtures on WebGPU', () => {
  for (const file of files) it(file, () => check(file, gpu as Backend), 120_000);
});
