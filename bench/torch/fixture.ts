/*
 * The float64 structure check of bench/torch/models.py: tiny FoX, FoX-Pro, Transformer and
 * Transformer-Pro models with large random weights (std 0.3; random norm weights and biases, so
 * every gate, norm and shift matters to the loss), their float64 CPU loss on foxgate's token
 * stream, written as DIR/<model>-tiny/ (model.safetensors in F64, config.json, tokens.i32,
 * step0.json). `python3 train_bench.py --fixture DIR` (torch, CPU, float64) and
 * `python3 test_local.py DIR` (numpy) must reproduce the losses; DIR/known.safetensors holds
 * one tensor of each dtype foxgate writes, its values in DIR/known.json (the reader's check). Run with tsx, or bundled by
 * scripts/gpu/build.sh as torch/fixture.mjs: `node fixture.mjs DIR`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomIds } from '../../apps/cli/src/bench/train.js';
import { flattenTree, unflattenTree } from '../../packages/autograd/src/index.js';
import { createModel, type ModelParams, saveCheckpoint } from '../../packages/models/src/index.js';
import { randomNormal, rngKey, split, type Tensor, tensor, writeSafetensorsFile } from '../../packages/tensor/src/index.js';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: fixture DIR');
  process.exit(2);
}
mkdirSync(dir, { recursive: true });
const [B, T] = [2, 40];
for (const model of ['fox', 'foxPro', 'transformer', 'transformerPro'] as const) {
  const m = createModel({ model, preset: 'tiny', initializer_range: 0.3 });
  const p = m.init(rngKey(7), { dtype: 'float64' });
  // 1-D leaves (norm weights, biases): random too, norms around 1
  const leaves = flattenTree(p);
  const keys = split(rngKey(11), leaves.size);
  const out = new Map<string, Tensor>();
  let i = 0;
  for (const [name, t] of leaves) {
    if (t.rank === 1) {
      const r = randomNormal(keys[i], t.shape, { dtype: 'float64', std: 0.3 });
      out.set(name, name.endsWith('.bias') ? r : r.add(1));
    } else out.set(name, t);
    i++;
  }
  const params = unflattenTree<ModelParams>(out);
  const ids = randomIds(B * (T + 1), m.config.vocab_size);
  const x = new Int32Array(B * T);
  const y = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    x.set(ids.subarray(b * (T + 1), b * (T + 1) + T), b * T);
    y.set(ids.subarray(b * (T + 1) + 1, (b + 1) * (T + 1)), b * T);
  }
  const loss = m.loss(params, tensor(x, [B, T], { dtype: 'int32' }), tensor(y, [B, T], { dtype: 'int32' })).itemSync();
  const sub = join(dir, `${model}-tiny`);
  await saveCheckpoint(sub, params, m.config);
  writeFileSync(join(sub, 'tokens.i32'), new Uint8Array(ids.buffer));
  writeFileSync(
    join(sub, 'step0.json'),
    `${JSON.stringify({ model, preset: 'tiny', B, T, loss, dtype: 'float64', tokens: 'tokens.i32' }, null, 2)}\n`,
  );
  console.log(`${model}-tiny: float64 loss ${loss}`);
}

// one tensor per writable dtype, with awkward values, for the safetensors reader
const known = {
  f64: { dtype: 'F64', shape: [2, 3], data: Float64Array.from([0, -1.5, Math.PI, 1e-300, -1e300, 2 ** -1074]) },
  f32: { dtype: 'F32', shape: [3], data: Float32Array.from([1, -2.5, 3.4028234663852886e38]) },
  i32: { dtype: 'I32', shape: [2, 2], data: Int32Array.from([-2147483648, 2147483647, 0, -7]) },
  u32: { dtype: 'U32', shape: [2], data: Uint32Array.from([4294967295, 3]) },
  u8: { dtype: 'U8', shape: [3], data: Uint8Array.from([0, 128, 255]) },
  flags: { dtype: 'BOOL', shape: [1, 3], data: Uint8Array.from([1, 0, 1]) },
  scalar: { dtype: 'F32', shape: [], data: Float32Array.from([0.25]) },
} as const;
await writeSafetensorsFile(join(dir, 'known.safetensors'), known, { format: 'pt' });
const values = Object.fromEntries(
  Object.entries(known).map(([k, e]) => [k, { dtype: e.dtype, shape: e.shape, values: Array.from(e.data as ArrayLike<number>) }]),
);
writeFileSync(join(dir, 'known.json'), `${JSON.stringify(values, null, 1)}\n`);
