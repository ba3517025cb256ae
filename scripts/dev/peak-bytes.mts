/*
 * Peak live bytes of one training step's loss + gradient on the CPU backend, the accounting the
 * WebGPU peak of `foxgate bench train` uses (`memoryStats().backends.*.peakBytes`), to see how
 * memory grows with the context: `npx tsx --conditions=source scripts/dev/peak-bytes.mts
 * [model=transformer] [preset=125M] [T,T,...=1024,2048] [fused|unfused]` (B = 1; prints one line
 * per T and the growth per token between the first two).
 */
import { valueAndGrad } from '../../packages/autograd/src/index.js';
import { createModel, type ModelName, type PresetName } from '../../packages/models/src/index.js';
import { dispose, memoryStats, resetPeakMemory, rngKey, tensor } from '../../packages/tensor/src/index.js';

const [model = 'transformer', preset = '125M', ts = '1024,2048', mode = 'fused'] = process.argv.slice(2);
const m = createModel({ model: model as ModelName, preset: preset as PresetName });
const params = m.init(rngKey(1));
const peaks: [number, number][] = [];
for (const T of ts.split(',').map(Number)) {
  const toks = tensor(
    Int32Array.from({ length: T }, (_, i) => (i * 7) % 250),
    [1, T],
  );
  resetPeakMemory();
  const r = valueAndGrad((p: typeof params) => m.loss(p, toks, toks, { shift: true, fusedLoss: mode !== 'unfused' }))(params);
  const peak = memoryStats().backends.cpu.peakBytes ?? 0;
  peaks.push([T, peak]);
  console.log(`${model} ${preset} B=1 T=${T} ${mode} loss: peak ${(peak / 1e9).toFixed(3)} GB`);
  dispose(r);
  toks.dispose();
}
if (peaks.length > 1) console.log(`growth ${((peaks[1][1] - peaks[0][1]) / (peaks[1][0] - peaks[0][0]) / 1e6).toFixed(3)} MB per token`);
dispose(params);
