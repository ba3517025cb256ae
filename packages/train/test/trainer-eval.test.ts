import { createModel, type Model, type ModelParams } from '@foxgate/models';
import { dispose, getBackend, rngKey, type Tensor, tensor } from '@foxgate/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Batch, evaluate, IGNORE_INDEX, type RunData, runConfig, runData } from '../src/index.js';
import { sharedData } from './data-shared.js';

/**
 * evaluate() against a hand computation on a fixed (untrained, seeded) tiny model: the logits
 * come from model.forward, the token losses from a float64 log-softmax written here.
 */

/** Per-position token loss (natural log; NaN where the target is ignored) of one batch, in float64. */
async function tokenLosses(model: Model, params: ModelParams, b: Batch, docStarts: boolean): Promise<Float64Array> {
  const x = tensor(b.tokens, [b.B, b.T], { dtype: 'int32', backend: 'cpu' });
  const d = docStarts && b.docStarts ? tensor(b.docStarts, [b.B, b.T], { dtype: 'bool', backend: 'cpu' }) : undefined;
  const logits = model.forward(params, x, { docStarts: d });
  const V = logits.shape[2];
  const z = await logits.data();
  dispose([x, d, logits]);
  const out = new Float64Array(b.B * b.T).fill(Number.NaN);
  for (let i = 0; i < b.B * b.T; i++) {
    const y = b.targets[i];
    if (y === IGNORE_INDEX) continue;
    let m = -Infinity;
    for (let v = 0; v < V; v++) m = Math.max(m, z[i * V + v]);
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(z[i * V + v] - m);
    out[i] = m + Math.log(s) - z[i * V + y];
  }
  return out;
}

/** Mean loss and per-bucket means of every counted target of `data.evaluation(T, rows)`. */
async function byHand(model: Model, params: ModelParams, data: RunData, T: number, rows: number, width: number) {
  const nb = Math.ceil(T / width);
  const sum = new Float64Array(nb);
  const cnt = new Float64Array(nb);
  const batches = [...(data.evaluation(T, rows) ?? [])];
  for (const b of batches) {
    const l = await tokenLosses(model, params, b, true);
    for (let i = 0; i < l.length; i++) {
      if (Number.isNaN(l[i])) continue;
      const k = Math.floor((i % b.T) / width);
      sum[k] += l[i];
      cnt[k]++;
    }
  }
  const targets = cnt.reduce((a, v) => a + v, 0);
  return {
    batches,
    targets,
    loss: sum.reduce((a, v) => a + v, 0) / targets,
    buckets: [...sum].map((s, k) => (cnt[k] ? s / cnt[k] : null)),
  };
}

const cpu = getBackend('cpu');

const close = (a: number | null, b: number | null, rel = 2e-6) => {
  expect(a === null).toBe(b === null);
  if (a !== null && b !== null) expect(Math.abs(a - b)).toBeLessThanOrEqual(rel * Math.abs(b) + 1e-7);
};

describe('evaluate on MQAR: per-position buckets and extrapolation by hand', () => {
  const cfg = runConfig({ data: 'synthetic:mqar', context: 32, batch: 4, device: 'cpu' });
  const data = runData(cfg);
  const model = createModel({ model: 'foxPro', preset: 'tiny', vocab_size: data.vocabSize });
  let params: ModelParams;
  beforeAll(() => {
    params = model.init(rngKey(7), { backend: 'cpu' });
  });
  afterAll(() => dispose(params));

  it('loss, buckets (default width context/16) and 2×, 4× extrapolation equal the hand computation', async () => {
    const res = await evaluate(model, params, data, { context: 32, rows: 8, backend: cpu, extrapolate: [2, 4] });
    const want = await byHand(model, params, data, 32, 8, 2);
    expect(res.context).toBe(32);
    expect(res.targets).toBe(want.targets);
    close(res.loss, want.loss);
    expect(res.perPosition.length).toBe(16);
    res.perPosition.forEach((p, k) => {
      expect([p.start, p.end]).toEqual([2 * k, 2 * k + 2]);
      close(p.loss, want.buckets[k]);
    });
    // the buckets' target-weighted mean is the loss; MQAR counts only answers: some buckets are empty
    expect(res.perPosition.some((p) => p.loss === null)).toBe(true);

    expect(res.extrapolation.map((e) => [e.factor, e.context])).toEqual([
      [2, 64],
      [4, 128],
    ]);
    for (const e of res.extrapolation) {
      const h = await byHand(model, params, data, e.context, 8, 2);
      expect(e.targets).toBe(h.targets);
      close(e.loss, h.loss);
      expect(e.perPosition.length).toBe(e.context / 2); // the training context's bucket width
      e.perPosition.forEach((p, k) => {
        close(p.loss, h.buckets[k]);
      });
      // longer rows hold more episodes (docStarts mark them): answers appear past the training length
      expect(e.perPosition.slice(16).some((p) => p.loss !== null)).toBe(true);
    }
  });

  it("the loss equals the model's own mean loss over the same batch; accuracy is correct/total of argmax", async () => {
    const res = await evaluate(model, params, data, { context: 32, rows: 4, backend: cpu, bucket: 8 });
    expect(res.perPosition.map((p) => [p.start, p.end])).toEqual([
      [0, 8],
      [8, 16],
      [16, 24],
      [24, 32],
    ]);
    const [b] = [...(data.evaluation(32, 4) ?? [])];
    expect(b.B).toBe(4);
    const x = tensor(b.tokens, [b.B, b.T], { dtype: 'int32', backend: 'cpu' });
    const y = tensor(b.targets, [b.B, b.T], { dtype: 'int32', backend: 'cpu' });
    const d = b.docStarts ? tensor(b.docStarts, [b.B, b.T], { dtype: 'bool', backend: 'cpu' }) : undefined;
    const loss: Tensor = model.loss(params, x, y, { docStarts: d });
    close(res.loss, (await loss.data())[0], 1e-6);
    // accuracy: argmax of the logits at every counted target
    const logits = model.forward(params, x, { docStarts: d });
    const V = logits.shape[2];
    const z = await logits.data();
    let correct = 0;
    let total = 0;
    for (let i = 0; i < b.B * b.T; i++) {
      if (b.targets[i] === IGNORE_INDEX) continue;
      let best = 0;
      for (let v = 1; v < V; v++) if (z[i * V + v] > z[i * V + best]) best = v;
      total++;
      if (best === b.targets[i]) correct++;
    }
    expect(res.accuracy?.total).toBe(total);
    expect(res.accuracy?.correct).toBe(correct);
    expect(res.accuracy?.value).toBe(correct / total);
    expect(res.accuracy?.chance).toBe(1 / 8);
    expect(res.gates?.meanLogF.length).toBe(2);
    expect(res.gates?.meanLogF[0].length).toBe(2);
    for (const row of res.gates?.meanLogF ?? []) for (const v of row) expect(v).toBeLessThan(0);
    dispose([x, y, d, loss, logits]);
  });
});

describe('evaluate on DailyDialog: per-sample perplexity', () => {
  it('exp(mean over samples of each response mean token loss), from per-token losses by hand', async () => {
    const cfg = runConfig({ data: `dailydialog:${sharedData('dailydialog')}`, context: 96, batch: 4, dialogContext: 2, device: 'cpu' });
    const data = runData(cfg);
    const model = createModel({ model: 'foxPro', preset: 'tiny', vocab_size: data.vocabSize });
    const params = model.init(rngKey(3), { backend: 'cpu' });
    const rows = 12;
    const res = await evaluate(model, params, data, { context: 96, rows, backend: cpu, extrapolate: [2] });
    const sum = new Map<number, number>();
    const count = new Map<number, number>();
    let tokens = 0;
    for (const b of data.evaluation(96, rows) ?? []) {
      const l = await tokenLosses(model, params, b, false);
      for (let i = 0; i < l.length; i++) {
        const id = b.sampleIds?.[i] ?? -1;
        if (Number.isNaN(l[i])) {
          expect(id).toBe(-1); // no sample id without a target
          continue;
        }
        expect(id).toBeGreaterThanOrEqual(0); // every response token belongs to a sample
        sum.set(id, (sum.get(id) ?? 0) + l[i]);
        count.set(id, (count.get(id) ?? 0) + 1);
        tokens++;
      }
    }
    const means = [...sum].map(([id, s]) => s / (count.get(id) as number));
    expect(means.length).toBe(rows); // one response per row
    expect(res.samples).toBe(rows);
    expect(res.targets).toBe(tokens);
    const ppl = Math.exp(means.reduce((a, v) => a + v, 0) / means.length);
    expect(Math.abs((res.perplexity as number) - ppl) / ppl).toBeLessThan(2e-6);
    // not the token-weighted exp(mean loss) (responses differ in length)
    expect(Math.abs(Math.exp(res.loss) - ppl) / ppl).toBeGreaterThan(1e-4);
    // dialog windows are not made longer than the training context
    expect(res.extrapolation).toEqual([]);
    dispose(params);
  });
});
