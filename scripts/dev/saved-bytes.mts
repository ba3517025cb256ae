/*
 * What one training step keeps alive for the backward, by op kind: runs one loss + gradient of a
 * model on the CPU backend and, at the moment the backward starts (the forward's intermediates
 * are freed then, the tape holds only what its nodes saved), sums the bytes of the storages each
 * tape node holds, per node kind (a primitive's name, or a custom op's name). A storage held by
 * several nodes is counted once, for the first node that holds it; parameters are left out.
 * `npx tsx --conditions=source scripts/dev/saved-bytes.mts [model=transformer] [preset=125M] [T=128]`
 * (B = 1). Per-token, per-layer figures are in units of `hidden_size` floats (dim floats).
 */
import { treeLeaves, valueAndGrad } from '../../packages/autograd/src/index.js';
import { Tape } from '../../packages/autograd/src/tape.js';
import { createModel, type ModelName, type PresetName } from '../../packages/models/src/index.js';
import { dispose, rngKey, type Storage, type Tensor, tensor } from '../../packages/tensor/src/index.js';

const [model = 'transformer', preset = '125M', tArg = '128'] = process.argv.slice(2);
const T = Number(tArg);
const m = createModel({ model: model as ModelName, preset: preset as PresetName });
const params = m.init(rngKey(1));
const paramStorages = new Set<Storage>(treeLeaves(params).map((t: Tensor) => t.storage));

interface Held {
  bytes: number;
  count: number;
  shapes: Map<string, number>;
}
const byKind = new Map<string, Held>();
let nodes = 0;

type AnyNode =
  | { kind: 'prim'; rec: { prim: string }; savedInputs: (Tensor | null)[]; savedOutput: Tensor | null }
  | { kind: 'custom'; spec: { name: string; saved: Tensor[] }; owned: Tensor[] };

const origBackward = Tape.prototype.backward;
Tape.prototype.backward = function (this: Tape, loss: Tensor, seed: Tensor) {
  const seen = new Set<Storage>(paramStorages);
  for (const n of this.nodes as unknown as AnyNode[]) {
    nodes++;
    const name = n.kind === 'prim' ? n.rec.prim : `custom:${n.spec.name}`;
    const held = n.kind === 'prim' ? [...n.savedInputs, n.savedOutput] : [...n.owned, ...n.spec.saved];
    for (const t of held) {
      if (!t || seen.has(t.storage)) continue;
      seen.add(t.storage);
      const h = byKind.get(name) ?? { bytes: 0, count: 0, shapes: new Map() };
      h.bytes += t.storage.byteLength;
      h.count++;
      const s = `[${t.shape.join(',')}]`;
      h.shapes.set(s, (h.shapes.get(s) ?? 0) + 1);
      byKind.set(name, h);
    }
  }
  return origBackward.call(this, loss, seed);
};

const toks = tensor(
  Int32Array.from({ length: T }, (_, i) => (i * 7) % 250),
  [1, T],
);
const r = valueAndGrad((p: typeof params) => m.loss(p, toks, toks, { shift: true }))(params);
const c = m.config;
const unit = T * c.num_hidden_layers * c.hidden_size * 4; // bytes of one dim-float per token per layer
const rows = [...byKind.entries()].sort((a, b) => b[1].bytes - a[1].bytes);
let total = 0;
console.log(`${model} ${preset} B=1 T=${T}: ${nodes} tape nodes; saved for the backward (params excluded):`);
console.log('kind'.padEnd(28), 'MB'.padStart(9), 'tensors'.padStart(8), 'dim/tok/layer'.padStart(14), ' shapes');
for (const [k, h] of rows) {
  total += h.bytes;
  const shapes = [...h.shapes.entries()].map(([s, n]) => `${n}×${s}`).join(' ');
  console.log(
    k.padEnd(28),
    (h.bytes / 1e6).toFixed(3).padStart(9),
    String(h.count).padStart(8),
    (h.bytes / unit).toFixed(2).padStart(14),
    ` ${shapes}`,
  );
}
console.log(
  'total'.padEnd(28),
  (total / 1e6).toFixed(3).padStart(9),
  ''.padStart(8),
  (total / unit).toFixed(2).padStart(14),
  ` (${((total / T) * 1e-6).toFixed(3)} MB per token)`,
);
dispose(r);
toks.dispose();
dispose(params);
