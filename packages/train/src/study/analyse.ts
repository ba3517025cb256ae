/**
 * The study's analyses from per-sample mean losses (natural log):
 * (1) the train × test PPL grid per model and PPL vs training N;
 * (2) test PPL in history-length buckets per training N;
 * (3) the per-sample oracle: each sample gets its own best N;
 * (4) one model against another across the grid, split by test N vs training N.
 * A PPL is always exp(mean over samples of their mean token losses).
 */
import { fail } from '@foxgate/tensor';
import { dialogPerplexity } from '../data/dialog-ppl.js';
import { bucketLabel, contextKey, contextRank, type DialogContext, type HistoryBucket } from './config.js';

/** A cell's test losses: `losses[testKey][sampleId]`. */
export interface CellLosses {
  model: string;
  trainContext: DialogContext;
  losses: Record<string, readonly number[]>;
}

export interface GridEntry {
  model: string;
  trainContext: DialogContext;
  testContext: DialogContext;
  perplexity: number;
  samples: number;
}

export interface TrainCurveEntry {
  model: string;
  trainContext: DialogContext;
  /** Tested at its own training N. */
  matched: number;
  /** Its best test N and that PPL. */
  bestTestContext: DialogContext;
  bestTest: number;
}

export interface BucketEntry {
  model: string;
  trainContext: DialogContext;
  bucket: string;
  lo: number;
  hi: number | null;
  samples: number;
  /** At test N = training N; null where the bucket is empty. */
  perplexity: number | null;
}

export interface BucketBest {
  model: string;
  bucket: string;
  samples: number;
  /** The training N of the lowest PPL in this bucket. */
  bestTrainContext: DialogContext | null;
  perplexity: number | null;
}

export interface OracleResult {
  model: string;
  /** What the oracle picks among: 'train' — the models trained at each N, each tested at its own N. */
  over: 'train';
  choices: DialogContext[];
  /** The best single N for all samples, and its PPL. */
  bestFixed: { context: DialogContext; perplexity: number };
  perplexity: number;
  /** 1 − oracle / best fixed. */
  relativeGain: number;
  /** Samples won by each N (ties go to the shortest N). */
  wins: Record<string, number>;
  samples: number;
}

export interface TestOracleResult {
  model: string;
  trainContext: DialogContext;
  /** The oracle over the test N of one trained model. */
  bestFixed: { context: DialogContext; perplexity: number };
  perplexity: number;
  relativeGain: number;
  wins: Record<string, number>;
}

export interface ComparisonEntry {
  trainContext: DialogContext;
  testContext: DialogContext;
  baseline: number;
  other: number;
  /** other / baseline (< 1: the other model is better). */
  ratio: number;
}

export interface ComparisonGroup {
  /** Geometric mean of the ratios in the group; null where the group is empty. */
  meanRatio: number | null;
  cells: number;
  /** Cells where the other model has the lower PPL. */
  otherWins: number;
}

export interface Comparison {
  baseline: string;
  other: string;
  entries: ComparisonEntry[];
  /** By where the test N lies against the training N. */
  testLonger: ComparisonGroup;
  testSame: ComparisonGroup;
  testShorter: ComparisonGroup;
}

/** PPL(train N, test N) / PPL(train N, test = train N), per model, for test N longer than training N. */
export interface ExtrapolationEntry {
  model: string;
  /** Geometric mean over the (train < test) cells; null when there are none. */
  meanRatio: number | null;
  cells: number;
}

export interface StudyAnalysis {
  grid: GridEntry[];
  trainCurve: TrainCurveEntry[];
  buckets: BucketEntry[];
  bucketBest: BucketBest[];
  oracle: OracleResult[];
  testOracle: TestOracleResult[];
  comparisons: Comparison[];
  extrapolation: ExtrapolationEntry[];
}

const OP = 'analyseStudy';

function lossesAt(c: CellLosses, n: DialogContext): readonly number[] {
  const l = c.losses[contextKey(n)];
  if (!l) fail(OP, `cell ${c.model} n=${c.trainContext} has no losses at test N = ${n}`);
  return l;
}

/** exp(mean of the losses at `ids`), or of all of them. */
function ppl(losses: readonly number[], ids?: readonly number[]): number {
  return dialogPerplexity(ids ? ids.map((i) => losses[i]) : losses);
}

/** Per sample, the choice of lowest loss (ties: the first); the oracle PPL; the wins. */
export function perSampleOracle(byChoice: readonly (readonly number[])[]): { perplexity: number; winners: number[] } {
  if (byChoice.length === 0) fail(OP, 'perSampleOracle needs at least one choice');
  const n = byChoice[0].length;
  for (const c of byChoice) if (c.length !== n) fail(OP, 'perSampleOracle: every choice needs the same samples');
  const best: number[] = [];
  const winners: number[] = [];
  for (let i = 0; i < n; i++) {
    let k = 0;
    for (let j = 1; j < byChoice.length; j++) if (byChoice[j][i] < byChoice[k][i]) k = j;
    best.push(byChoice[k][i]);
    winners.push(k);
  }
  return { perplexity: dialogPerplexity(best), winners };
}

function oracleOf(choices: DialogContext[], byChoice: (readonly number[])[]) {
  const fixed = byChoice.map((l) => ppl(l));
  let bi = 0;
  for (let j = 1; j < fixed.length; j++) if (fixed[j] < fixed[bi]) bi = j;
  const o = perSampleOracle(byChoice);
  const wins: Record<string, number> = Object.fromEntries(choices.map((c) => [contextKey(c), 0]));
  for (const w of o.winners) wins[contextKey(choices[w])]++;
  return {
    bestFixed: { context: choices[bi], perplexity: fixed[bi] },
    perplexity: o.perplexity,
    relativeGain: 1 - o.perplexity / fixed[bi],
    wins,
  };
}

const geoMean = (xs: number[]): number | null => (xs.length ? Math.exp(xs.reduce((a, x) => a + Math.log(x), 0) / xs.length) : null);

function group(es: ComparisonEntry[]): ComparisonGroup {
  return { meanRatio: geoMean(es.map((e) => e.ratio)), cells: es.length, otherWins: es.filter((e) => e.other < e.baseline).length };
}

/**
 * Every analysis of the study. `historyLength[i]` is sample i's number of previous utterances;
 * every cell must hold losses at each of `testContexts` and at its own training N.
 */
export function analyseStudy(
  cells: readonly CellLosses[],
  testContexts: readonly DialogContext[],
  historyLength: readonly number[],
  buckets: readonly HistoryBucket[],
): StudyAnalysis {
  if (cells.length === 0) fail(OP, 'no cells to analyse');
  const models = [...new Set(cells.map((c) => c.model))];
  const ofModel = (m: string) =>
    cells.filter((c) => c.model === m).sort((a, b) => contextRank(a.trainContext) - contextRank(b.trainContext));
  const grid: GridEntry[] = [];
  const trainCurve: TrainCurveEntry[] = [];
  for (const c of cells) {
    let best: [DialogContext, number] | null = null;
    for (const n of testContexts) {
      const l = lossesAt(c, n);
      const p = ppl(l);
      grid.push({ model: c.model, trainContext: c.trainContext, testContext: n, perplexity: p, samples: l.length });
      if (!best || p < best[1]) best = [n, p];
    }
    const matched = ppl(lossesAt(c, c.trainContext));
    if (!best) best = [c.trainContext, matched];
    trainCurve.push({ model: c.model, trainContext: c.trainContext, matched, bestTestContext: best[0], bestTest: best[1] });
  }

  const bucketIds = buckets.map((b) => {
    const ids: number[] = [];
    for (let i = 0; i < historyLength.length; i++) if (historyLength[i] >= b.lo && (b.hi === null || historyLength[i] <= b.hi)) ids.push(i);
    return ids;
  });
  const bucketEntries: BucketEntry[] = [];
  const bucketBest: BucketBest[] = [];
  const oracle: OracleResult[] = [];
  const testOracle: TestOracleResult[] = [];
  for (const m of models) {
    const mc = ofModel(m);
    for (const [k, b] of buckets.entries()) {
      const ids = bucketIds[k];
      let best: [DialogContext, number] | null = null;
      for (const c of mc) {
        const p = ids.length ? ppl(lossesAt(c, c.trainContext), ids) : null;
        bucketEntries.push({
          model: m,
          trainContext: c.trainContext,
          bucket: bucketLabel(b),
          lo: b.lo,
          hi: b.hi,
          samples: ids.length,
          perplexity: p,
        });
        if (p !== null && (!best || p < best[1])) best = [c.trainContext, p];
      }
      bucketBest.push({
        model: m,
        bucket: bucketLabel(b),
        samples: ids.length,
        bestTrainContext: best?.[0] ?? null,
        perplexity: best?.[1] ?? null,
      });
    }
    const choices = mc.map((c) => c.trainContext);
    const o = oracleOf(
      choices,
      mc.map((c) => lossesAt(c, c.trainContext)),
    );
    oracle.push({ model: m, over: 'train', choices, ...o, samples: historyLength.length });
    for (const c of mc) {
      const to = oracleOf(
        [...testContexts],
        testContexts.map((n) => lossesAt(c, n)),
      );
      testOracle.push({ model: m, trainContext: c.trainContext, ...to });
    }
  }

  const comparisons: Comparison[] = [];
  const baseline = models[0];
  for (const other of models.slice(1)) {
    const entries: ComparisonEntry[] = [];
    for (const cb of ofModel(baseline)) {
      const co = cells.find((c) => c.model === other && contextKey(c.trainContext) === contextKey(cb.trainContext));
      if (!co) continue;
      for (const n of testContexts) {
        const pb = ppl(lossesAt(cb, n));
        const po = ppl(lossesAt(co, n));
        entries.push({ trainContext: cb.trainContext, testContext: n, baseline: pb, other: po, ratio: po / pb });
      }
    }
    const rel = (e: ComparisonEntry) => contextRank(e.testContext) - contextRank(e.trainContext);
    comparisons.push({
      baseline,
      other,
      entries,
      testLonger: group(entries.filter((e) => e.testContext !== e.trainContext && rel(e) > 0)),
      testSame: group(entries.filter((e) => contextKey(e.testContext) === contextKey(e.trainContext))),
      testShorter: group(entries.filter((e) => rel(e) < 0)),
    });
  }

  const extrapolation: ExtrapolationEntry[] = models.map((m) => {
    const ratios: number[] = [];
    for (const c of ofModel(m)) {
      const own = ppl(lossesAt(c, c.trainContext));
      for (const n of testContexts) if (contextRank(n) > contextRank(c.trainContext)) ratios.push(ppl(lossesAt(c, n)) / own);
    }
    return { model: m, meanRatio: geoMean(ratios), cells: ratios.length };
  });

  return { grid, trainCurve, buckets: bucketEntries, bucketBest, oracle, testOracle, comparisons, extrapolation };
}
