/*
 * Bytes one attention block keeps alive for its backward, per piece, on the CPU backend:
 * `npx tsx --conditions=source scripts/dev/attn-saved.mts [model=transformer] [T,T=256,512] [hidden=256] [heads=4]`
 * (B = 1; models: transformer, fox, foxPro, transformerPro). Runs `attentionLayer` of layer 0 under
 * `valueAndGrad` (gradients of its parameters and of its input x) and, at the moment the backward
 * starts (the forward's intermediates are freed then, the tape holds only what its nodes saved),
 * sums the bytes of every storage a tape node holds, by the function of the models package that
 * recorded the node (its first frame under packages/models/src) and the op. A storage held by
 * several nodes is counted once, for the first node that holds it; the parameters, x, the RoPE
 * tables (built once per forward for all layers) and the loss's constant are left out. Also
 * prints the peak bytes of the whole forward + backward above what lived before it. Figures per
 * token in units of `hidden` float32 values (the per-layer, per-token cost of a model); with two
 * T, the growth per token of the saved bytes and of the peak between them (which leaves out the
 * parameters' gradients).
 */
import { valueAndGrad } from '../../packages/autograd/src/index.js';
import { Tape } from '../../packages/autograd/src/tape.js';
import { attentionLayer, layerRopeTables } from '../../packages/models/src/attention-layer.js';
import { createModel, type ModelName } from '../../packages/models/src/index.js';
import {
  dispose,
  memoryStats,
  mul,
  randomNormal,
  resetPeakMemory,
  rngKey,
  type Storage,
  sum,
  type Tensor,
} from '../../packages/tensor/src/index.js';

const [model = 'transformer', tArg = '256,512', hArg = '256', headsArg = '4'] = process.argv.slice(2);
const Ts = tArg.split(',').map(Number);
const hidden = Number(hArg);
const heads = Number(headsArg);
const m = createModel({ model: model as ModelName, preset: 'tiny', hidden_size: hidden, num_heads: heads, num_hidden_layers: 1 });
const c = m.config;
const params = m.init(rngKey(1));
const attn = params.model.layers[0].attn;
const bytes = () => memoryStats().backends.cpu.bytesInUse;

type AnyNode =
  | { kind: 'prim'; rec: { prim: string }; savedInputs: (Tensor | null)[]; savedOutput: Tensor | null }
  | { kind: 'custom'; spec: { name: string; saved: Tensor[] }; owned: Tensor[] };

// who recorded each node: the first stack frame inside packages/models/src (function and file)
const labels = new WeakMap<object, string>();
const where = (): string => {
  const lines = (new Error().stack ?? '').split('\n').slice(1);
  for (const l of lines) {
    const mm = /at (?:(\S+) )?\(?(.*packages\/models\/src\/(.*?\.ts)):\d+:\d+\)?/.exec(l);
    if (mm && !mm[3].endsWith('check.ts')) return `${mm[1] ?? '<anon>'} (${mm[3].split('/').pop()})`;
  }
  return '?';
};
const proto = Tape.prototype as unknown as Record<string, (...a: unknown[]) => unknown> & { nodes?: unknown[] };
for (const method of ['onRecord', 'recordCustom']) {
  const orig = proto[method];
  proto[method] = function (this: { nodes: object[] }, ...args: unknown[]) {
    const n = this.nodes.length;
    const out = orig.apply(this, args);
    if (this.nodes.length > n) labels.set(this.nodes[this.nodes.length - 1], where());
    return out;
  };
}

const origBackward = Tape.prototype.backward;
let onBackward: (tape: Tape) => void = () => {};
Tape.prototype.backward = function (this: Tape, loss: Tensor, seed: Tensor) {
  onBackward(this);
  return origBackward.call(this, loss, seed);
};

function measure(T: number, print: boolean): { saved: number; peak: number } {
  const unit = T * hidden * 4; // one float32 [T, hidden] tensor
  const x = randomNormal(rngKey(2), [1, T, hidden]);
  const r = randomNormal(rngKey(3), [1, T, hidden]);
  const rope = layerRopeTables(c, T, 0, x);
  const pre = new Set<Storage>();
  const leaves = [x, r, ...(rope ? [rope.cos, rope.sin] : [])];
  const collect = (v: unknown): void => {
    if (v && typeof v === 'object') {
      if ('storage' in (v as object) && 'shape' in (v as object)) pre.add((v as Tensor).storage);
      else for (const w of Object.values(v as object)) collect(w);
    }
  };
  collect(params);
  for (const t of leaves) pre.add(t.storage);
  const held = new Map<string, { bytes: number; shapes: string[] }>();
  let savedTotal = 0;
  let liveAtBackward = 0;
  onBackward = (tape) => {
    liveAtBackward = bytes();
    const seen = new Set<Storage>(pre);
    for (const n of tape.nodes as unknown as AnyNode[]) {
      const op = n.kind === 'prim' ? n.rec.prim : `custom:${n.spec.name}`;
      const key = `${labels.get(n) ?? '?'}  ${op}`;
      const ts = n.kind === 'prim' ? [...n.savedInputs, n.savedOutput] : [...n.owned, ...n.spec.saved];
      for (const t of ts) {
        if (!t || seen.has(t.storage)) continue;
        seen.add(t.storage);
        const h = held.get(key) ?? { bytes: 0, shapes: [] };
        h.bytes += t.storage.byteLength;
        h.shapes.push(`[${t.shape.join(',')}]`);
        held.set(key, h);
        savedTotal += t.storage.byteLength;
      }
    }
  };
  const before = bytes();
  resetPeakMemory();
  const f = (p: { attn: typeof attn; x: Tensor }) => {
    const { out } = attentionLayer(p.attn, p.x, c, { rope, impl: 'fused' });
    return sum(mul(out, r));
  };
  const g = valueAndGrad(f)({ attn, x });
  const peak = (memoryStats().backends.cpu.peakBytes ?? 0) - before;
  if (print) {
    const fmt = (b: number) => (b / unit).toFixed(3).padStart(7);
    console.log(`${model} attention block, B=1 T=${T} hidden=${hidden} heads=${heads} (D=${hidden / heads}): bytes / (T·hidden·4)`);
    for (const [k, h] of [...held.entries()].sort((a, b) => b[1].bytes - a[1].bytes)) {
      console.log(`${fmt(h.bytes)}  ${k}  ${h.shapes.join(' ')}`);
    }
    console.log(`${fmt(savedTotal)}  saved in all (tape nodes, at the start of the backward)`);
    console.log(`${fmt(liveAtBackward - before)}  live at the start of the backward above the inputs`);
    console.log(`${fmt(peak)}  peak of forward + backward above the inputs (gradients of the parameters and x included)`);
  }
  dispose(g);
  dispose(leaves);
  return { saved: savedTotal, peak };
}

const runs = Ts.map((T, i) => ({ T, ...measure(T, i === 0) }));
if (runs.length > 1) {
  const [a, b] = runs;
  const per = (k: 'saved' | 'peak') => ((b[k] - a[k]) / (b.T - a.T) / (hidden * 4)).toFixed(3);
  console.log(`growth per token (T ${a.T} → ${b.T}), in hidden-sized float32 rows: saved ${per('saved')}, peak ${per('peak')}`);
}
dispose(params);
