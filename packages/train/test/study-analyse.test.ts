import { describe, expect, it } from 'vitest';
import {
  analyseStudy,
  bucketLabel,
  type CellLosses,
  DEFAULT_HISTORY_BUCKETS,
  type DialogBatch,
  formatDailyDialog,
  parseDailyDialog,
  perSampleOracle,
  resolveStudyOptions,
  trimBatch,
} from '../src/index.js';

// four test samples with 1, 2, 5 and 12 previous utterances
const hist = [1, 2, 5, 12];
const cells: CellLosses[] = [
  { model: 'transformer', trainContext: 1, losses: { '1': [1, 2, 3, 4], all: [1.5, 2.5, 2.5, 3] } },
  { model: 'transformer', trainContext: 'all', losses: { '1': [2, 2, 2, 2], all: [0.5, 3, 2, 5] } },
  { model: 'foxPro', trainContext: 1, losses: { '1': [1, 1, 3, 3], all: [1, 2, 2, 2] } },
  { model: 'foxPro', trainContext: 'all', losses: { '1': [2, 2, 2, 3], all: [1, 1, 1, 1] } },
];
const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / xs.length;

describe('analyseStudy (hand-computed)', () => {
  const a = analyseStudy(cells, [1, 'all'], hist, DEFAULT_HISTORY_BUCKETS);
  it('grid: PPL = exp(mean over samples of their mean losses)', () => {
    const g = (m: string, n: number | 'all', t: number | 'all') =>
      a.grid.find((e) => e.model === m && e.trainContext === n && e.testContext === t)?.perplexity;
    expect(g('transformer', 1, 1)).toBeCloseTo(Math.exp(2.5), 12);
    expect(g('transformer', 1, 'all')).toBeCloseTo(Math.exp(2.375), 12);
    expect(g('transformer', 'all', 1)).toBeCloseTo(Math.exp(2), 12);
    expect(g('foxPro', 'all', 'all')).toBeCloseTo(Math.E, 12);
    expect(a.grid).toHaveLength(8);
  });
  it('(1) PPL vs training N: matched and best test N', () => {
    const t = a.trainCurve.find((e) => e.model === 'transformer' && e.trainContext === 'all');
    expect(t?.matched).toBeCloseTo(Math.exp(2.625), 12);
    expect(t?.bestTestContext).toBe(1);
    expect(t?.bestTest).toBeCloseTo(Math.exp(2), 12);
  });
  it('(2) buckets of history length at test N = training N; empty bucket is null', () => {
    expect(DEFAULT_HISTORY_BUCKETS.map(bucketLabel)).toEqual(['1', '2–3', '4–6', '7–10', '11+']);
    const b = (m: string, n: number | 'all', label: string) =>
      a.buckets.find((e) => e.model === m && e.trainContext === n && e.bucket === label);
    expect(b('transformer', 1, '1')?.perplexity).toBeCloseTo(Math.exp(1), 12);
    expect(b('transformer', 'all', '11+')?.perplexity).toBeCloseTo(Math.exp(5), 12);
    expect(b('transformer', 1, '7–10')).toMatchObject({ samples: 0, perplexity: null });
    const best = a.bucketBest.filter((e) => e.model === 'transformer').map((e) => e.bestTrainContext);
    // bucket 1: n1 1 vs all 0.5; 2–3: 2 vs 3; 4–6: 3 vs 2; 7–10: none; 11+: 4 vs 5
    expect(best).toEqual(['all', 1, 'all', null, 1]);
  });
  it('(3) oracle: per-sample best training N, its PPL, gain and wins', () => {
    const o = a.oracle.find((e) => e.model === 'transformer');
    // min([1,2,3,4], [0.5,3,2,5]) = [0.5, 2, 2, 4]
    expect(o?.perplexity).toBeCloseTo(Math.exp(mean([0.5, 2, 2, 4])), 12);
    expect(o?.bestFixed.context).toBe(1);
    expect(o?.bestFixed.perplexity).toBeCloseTo(Math.exp(2.5), 12);
    expect(o?.relativeGain).toBeCloseTo(1 - Math.exp(2.125 - 2.5), 12);
    expect(o?.wins).toEqual({ '1': 2, all: 2 });
    const f = a.oracle.find((e) => e.model === 'foxPro');
    // min([1,1,3,3], [1,1,1,1]): ties go to the first choice (N=1)
    expect(f?.wins).toEqual({ '1': 2, all: 2 });
    expect(f?.perplexity).toBeCloseTo(Math.E, 12);
    const to = a.testOracle.find((e) => e.model === 'transformer' && e.trainContext === 'all');
    // min([2,2,2,2],[0.5,3,2,5]) = [0.5,2,2,2]
    expect(to?.perplexity).toBeCloseTo(Math.exp(mean([0.5, 2, 2, 2])), 12);
    expect(to?.wins).toEqual({ '1': 3, all: 1 });
  });
  it('(4) the second model against the first, split by test N vs training N', () => {
    const c = a.comparisons[0];
    expect([c.baseline, c.other]).toEqual(['transformer', 'foxPro']);
    const r = (n: number | 'all', t: number | 'all') => c.entries.find((e) => e.trainContext === n && e.testContext === t)?.ratio;
    expect(r(1, 'all')).toBeCloseTo(Math.exp(mean([1, 2, 2, 2]) - 2.375), 12);
    expect(c.testLonger.cells).toBe(1); // only (train 1, test all)
    expect(c.testLonger.meanRatio).toBeCloseTo(Math.exp(1.75 - 2.375), 12);
    expect(c.testSame.cells).toBe(2);
    expect(c.testSame.meanRatio).toBeCloseTo(Math.sqrt(Math.exp(2 - 2.5) * Math.exp(1 - 2.625)), 12);
    expect(c.testShorter).toMatchObject({ cells: 1, otherWins: 0 }); // (all, 1): exp(2.25) vs exp(2)
    const x = a.extrapolation.find((e) => e.model === 'transformer');
    expect(x).toMatchObject({ cells: 1 });
    expect(x?.meanRatio).toBeCloseTo(Math.exp(2.375 - 2.5), 12);
  });
  it('perSampleOracle and the errors', () => {
    expect(
      perSampleOracle([
        [1, 5],
        [2, 4],
      ]).winners,
    ).toEqual([0, 1]);
    expect(() => perSampleOracle([[1], [1, 2]])).toThrow(/same samples/);
    expect(() => analyseStudy([{ model: 'm', trainContext: 2, losses: { '1': [1] } }], [1], [1], DEFAULT_HISTORY_BUCKETS)).toThrow(
      /cell m n=2 has no losses at test N = 2/,
    );
  });
});

describe('study settings and helpers', () => {
  it('resolveStudyOptions fills defaults, sorts N and rejects bad values with one line', () => {
    const o = resolveStudyOptions({ data: 'd', models: ['fox'], trainContexts: ['all', 3, 1, 3], testContexts: [2] });
    expect(o.trainContexts).toEqual([1, 3, 'all']);
    expect(o).toMatchObject({ steps: 300, batch: 16, context: 512, preset: 'tiny', maxDialogs: null, maxTestDialogs: null });
    expect(() => resolveStudyOptions({ data: 'd', models: ['fox'], trainContexts: [-1], testContexts: [1] })).toThrow(
      "dialogStudy: trainContexts must hold integers ≥ 0 or 'all', got -1",
    );
    expect(() => resolveStudyOptions({ data: 'd', models: ['fox', 'fox'], trainContexts: [1], testContexts: [1] })).toThrow(/twice/);
    expect(() => resolveStudyOptions({ data: 'd', models: ['fox'], trainContexts: [1], testContexts: [1], steps: 0 })).toThrow(
      'dialogStudy: steps must be a positive integer, got 0',
    );
  });
  it('formatDailyDialog writes what parseDailyDialog reads back', () => {
    const ds = parseDailyDialog('Hi . __eou__ Hello , how are you ? __eou__\nOk __eou__ Bye __eou__ x __eou__\n');
    expect(parseDailyDialog(formatDailyDialog(ds))).toEqual(ds);
  });
  it('trimBatch cuts every row to the longest one and keeps the values', () => {
    const T = 6;
    const b = {
      B: 2,
      T,
      tokens: Int32Array.from([1, 2, 3, 0, 0, 0, 1, 4, 5, 6, 0, 0]),
      targets: Int32Array.from([-100, 3, 9, -100, -100, -100, -100, -100, 6, 7, -100, -100]),
      sampleIds: Int32Array.from([-1, 0, 0, -1, -1, -1, -1, -1, 1, 1, -1, -1]),
      samples: [],
    } as unknown as DialogBatch;
    const t = trimBatch(b);
    expect(t.T).toBe(4);
    expect([...t.tokens]).toEqual([1, 2, 3, 0, 1, 4, 5, 6]);
    expect([...t.sampleIds]).toEqual([-1, 0, 0, -1, -1, -1, 1, 1]);
    expect([...t.targets]).toEqual([-100, 3, 9, -100, -100, -100, 6, 7]);
  });
});
