/** results.md of a dialog study: the settings, then a table per analysis. */
import { contextKey, type DialogContext } from './config.js';
import type { StudyResults } from './run.js';

const f2 = (v: number | null) => (v === null || !Number.isFinite(v) ? '—' : v.toFixed(2));
const f3 = (v: number | null) => (v === null || !Number.isFinite(v) ? '—' : v.toFixed(3));
const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
const N = (n: DialogContext | null) => (n === null ? '—' : contextKey(n));

function table(head: string[], rows: (string | number)[][]): string[] {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)];
}

/** The study's tables in Markdown. */
export function studyMarkdown(r: StudyResults): string {
  const s = r.settings;
  const a = r.analysis;
  const models = s.models;
  const L: string[] = ['# Dialog context-length study', ''];
  const fields = Object.entries(s.modelFields).map(([k, v]) => `${k}=${v}`);
  L.push(
    `- data: ${r.data.trainDialogs} training dialogs (${r.data.trainSamples} responses), ${r.data.testDialogs} test dialogs (${r.data.testSamples} responses)${s.maxDialogs !== null ? `, a subset of ${s.data}` : ''}; ${s.tokenizer} tokens, each utterance cut to 49 tokens + an end token, speaker tokens`,
    `- models: ${models.join(', ')}, preset ${s.preset}${fields.length ? ` (${fields.join(', ')})` : ''}; ${r.cells[0] ? `${(r.cells[0].params / 1e3).toFixed(0)}k` : '?'} parameters (${models[0]})`,
    `- per cell: ${s.steps} steps × ${s.batch} rows × T = ${s.context} = ${r.tokensPerCell.toLocaleString('en-US')} tokens (padded rows), lr ${s.lr}, seed ${s.seed}; the same responses in the same order for every N`,
    `- training N: ${s.trainContexts.map(N).join(', ')}; test N: ${s.testContexts.map(N).join(', ')}`,
    `- device: ${[...new Set(r.cells.map((c) => c.device))].join('; ')}; training ${(r.trainSeconds / 60).toFixed(1)} min, evaluation ${(r.evalSeconds / 60).toFixed(1)} min (all cells)`,
    '- PPL = exp(mean over test responses of each response’s mean token loss); lower is better',
    '',
  );

  L.push('## (1) PPL vs training N', '', 'Each model tested at its own training N, and at its best test N.', '');
  const rows1 = s.trainContexts.map((n) => [
    N(n),
    ...models.flatMap((m) => {
      const e = a.trainCurve.find((x) => x.model === m && contextKey(x.trainContext) === contextKey(n));
      return e ? [f2(e.matched), `${f2(e.bestTest)} (N=${N(e.bestTestContext)})`] : ['—', '—'];
    }),
  ]);
  L.push(...table(['training N', ...models.flatMap((m) => [`${m}: test N = training N`, `${m}: best test N`])], rows1), '');

  L.push('## Train × test grid', '');
  for (const m of models) {
    L.push(`**${m}** (rows: training N, columns: test N)`, '');
    const rows = s.trainContexts.map((n) => [
      N(n),
      ...s.testContexts.map((t) => {
        const g = a.grid.find(
          (x) => x.model === m && contextKey(x.trainContext) === contextKey(n) && contextKey(x.testContext) === contextKey(t),
        );
        return g ? f2(g.perplexity) : '—';
      }),
    ]);
    L.push(...table(['train \\ test', ...s.testContexts.map(N)], rows), '');
  }

  L.push('## (2) PPL by history length', '', 'Test N = training N; columns: previous utterances available to the response.', '');
  const labels = [...new Set(a.buckets.map((b) => b.bucket))];
  for (const m of models) {
    L.push(`**${m}**`, '');
    const rows = s.trainContexts.map((n) => [
      N(n),
      ...labels.map((b) =>
        f2(a.buckets.find((x) => x.model === m && x.bucket === b && contextKey(x.trainContext) === contextKey(n))?.perplexity ?? null),
      ),
    ]);
    rows.push([
      'best training N',
      ...labels.map((b) => N(a.bucketBest.find((x) => x.model === m && x.bucket === b)?.bestTrainContext ?? null)),
    ]);
    rows.push(['responses', ...labels.map((b) => String(a.bucketBest.find((x) => x.model === m && x.bucket === b)?.samples ?? 0))]);
    L.push(...table(['training N', ...labels], rows), '');
  }

  L.push('## (3) Per-sample oracle', '', 'Each test response gets the training N (tested at that N) that gives it the lowest loss.', '');
  L.push(
    ...table(
      ['model', 'best single N', 'its PPL', 'oracle PPL', 'gain', ...s.trainContexts.map((n) => `wins N=${N(n)}`)],
      a.oracle.map((o) => [
        o.model,
        N(o.bestFixed.context),
        f2(o.bestFixed.perplexity),
        f2(o.perplexity),
        pct(o.relativeGain),
        ...s.trainContexts.map((n) => `${o.wins[contextKey(n)] ?? 0} (${pct((o.wins[contextKey(n)] ?? 0) / o.samples)})`),
      ]),
    ),
    '',
    'The same over the test N of one trained model:',
    '',
    ...table(
      ['model', 'training N', 'best single test N', 'its PPL', 'oracle PPL', 'gain'],
      a.testOracle.map((o) => [
        o.model,
        N(o.trainContext),
        N(o.bestFixed.context),
        f2(o.bestFixed.perplexity),
        f2(o.perplexity),
        pct(o.relativeGain),
      ]),
    ),
    '',
  );

  L.push('## (4) Models compared', '');
  for (const c of a.comparisons) {
    L.push(`**${c.other} / ${c.baseline}** PPL ratio (< 1: ${c.other} better); rows: training N, columns: test N`, '');
    const rows = s.trainContexts.map((n) => [
      N(n),
      ...s.testContexts.map((t) =>
        f3(
          c.entries.find((e) => contextKey(e.trainContext) === contextKey(n) && contextKey(e.testContext) === contextKey(t))?.ratio ?? null,
        ),
      ),
    ]);
    L.push(...table(['train \\ test', ...s.testContexts.map(N)], rows), '');
    L.push(
      ...table(
        ['cells', 'geometric-mean ratio', `${c.other} better in`],
        [
          ['test N > training N', f3(c.testLonger.meanRatio), `${c.testLonger.otherWins} of ${c.testLonger.cells}`],
          ['test N = training N', f3(c.testSame.meanRatio), `${c.testSame.otherWins} of ${c.testSame.cells}`],
          ['test N < training N', f3(c.testShorter.meanRatio), `${c.testShorter.otherWins} of ${c.testShorter.cells}`],
        ],
      ),
      '',
    );
  }
  L.push(
    'Longer test context than trained on, PPL(train N, test N) / PPL(train N, test = train N), geometric mean:',
    '',
    ...table(
      ['model', 'ratio', 'cells'],
      a.extrapolation.map((e) => [e.model, f3(e.meanRatio), e.cells]),
    ),
    '',
  );

  L.push('## Cells', '');
  L.push(
    ...table(
      ['cell', 'params', 'steps', 'final train loss', 'validation PPL', 'train s', 'eval s'],
      r.cells.map((c) => [
        c.dir,
        c.params,
        c.steps,
        f3(c.finalTrainLoss),
        f2(c.validationPerplexity),
        c.trainSeconds.toFixed(0),
        c.evalSeconds.toFixed(0),
      ]),
    ),
    '',
  );
  return `${L.join('\n')}\n`;
}
