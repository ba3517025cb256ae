/*
 * WebGPU dispatches per kernel name of one loss + gradient (no optimizer step) of a model:
 * `npx tsx --conditions=source scripts/dev/dispatch-counts.mts [model=transformer] [layers=12]
 * [T=32] [B=1]` on the 'tiny' preset widths with `layers` layers (the counts depend on the layer
 * count, not on the widths). Counts by wrapping the engine's `dispatch` in this script (every
 * kernel launch goes through it; empty grids are not launched and not counted); a second step is
 * counted, so pipeline compilation and first-use allocations do not show.
 */
import { valueAndGrad } from '../../packages/autograd/src/index.js';
import { createModel, type ModelName } from '../../packages/models/src/index.js';
import { dispose, initWebGPU, rngKey, tensor } from '../../packages/tensor/src/index.js';

process.env.XDG_RUNTIME_DIR ??= '/tmp';
const [model = 'transformer', layers = '12', tArg = '32', bArg = '1'] = process.argv.slice(2);
const [T, B] = [Number(tArg), Number(bArg)];
const gpu = await initWebGPU();
const m = createModel({ model: model as ModelName, preset: 'tiny', num_hidden_layers: Number(layers) });
const params = m.init(rngKey(1), { backend: gpu });
const toks = tensor(
  Int32Array.from({ length: B * T }, (_, i) => (i * 7) % 250),
  [B, T],
  { dtype: 'int32', backend: gpu },
);
const engine = gpu.engine as unknown as { dispatch(d: { name: string; workgroups: number[] }): void };
const counts = new Map<string, number>();
const orig = engine.dispatch.bind(engine);
let counting = false;
engine.dispatch = (d) => {
  const [x, y, z] = d.workgroups;
  if (counting && x !== 0 && y !== 0 && z !== 0) counts.set(d.name, (counts.get(d.name) ?? 0) + 1);
  orig(d);
};
const step = async () => {
  const r = valueAndGrad((p: typeof params) => m.loss(p, toks, toks, { shift: true }))(params);
  await r.value.data();
  await gpu.sync();
  dispose(r);
};
await step();
counting = true;
await step();
counting = false;
const rows = [...counts.entries()].sort((a, b) => b[1] - a[1]);
const total = rows.reduce((n, [, c]) => n + c, 0);
console.log(`${model} tiny widths, ${layers} layers, B=${B} T=${T}: ${total} dispatches in one loss + gradient`);
for (const [k, c] of rows) console.log(`${k.padEnd(32)} ${String(c).padStart(6)}`);
dispose([params, toks]);
await gpu.destroy();
