/**
 * The dialog study's plots as standalone SVG files (each carries the few CSS rules the charts
 * use): the train × test PPL grid per model, PPL by training N, PPL by history length, the
 * oracle's wins and the ratio of one model to another across the grid.
 */
import type { DialogContext, StudyResults } from '@foxgate/train';
import { barChart, heatmap } from './svg.js';

const STYLE =
  '<style>.t{font:600 14px sans-serif;fill:#1d2330}.tick{font:11px sans-serif;fill:#4a5160}.lab,.leg{font:12px sans-serif;fill:#1d2330}.cell{font:10px sans-serif}.bg{fill:#fbfcfd}.grid{stroke:#e3e6eb}.axis{stroke:#6b7280}.vline{stroke:#6b7280;stroke-dasharray:4 3}</style>';

/** An inline chart made a file of its own: the style rules after the opening tag. */
export function standaloneSvg(svg: string): string {
  const end = svg.indexOf('>') + 1;
  return `<?xml version="1.0" encoding="UTF-8"?>\n${svg.slice(0, end)}\n${STYLE}${svg.slice(end)}\n`;
}

export interface StudyPlot {
  /** File name in the study folder. */
  file: string;
  title: string;
  /** The inline chart (for the HTML report). */
  svg: string;
}

const key = (n: DialogContext) => String(n);

/** Every plot of a study's results. */
export function studyPlots(r: StudyResults): StudyPlot[] {
  const s = r.settings;
  const a = r.analysis;
  const plots: StudyPlot[] = [];
  for (const m of s.models) {
    const title = `${m}: test PPL, training N (rows) × test N (columns)`;
    const values = s.trainContexts.map((n) =>
      s.testContexts.map(
        (t) =>
          a.grid.find((g) => g.model === m && key(g.trainContext) === key(n) && key(g.testContext) === key(t))?.perplexity ?? Number.NaN,
      ),
    );
    plots.push({
      file: `grid-${m}.svg`,
      title,
      svg: heatmap({
        id: `grid-${m}`,
        title,
        values,
        rowLabel: (i) => key(s.trainContexts[i]),
        colLabel: (j) => key(s.testContexts[j]),
        xLabel: 'test N (previous utterances)',
        yLabel: 'training N',
        format: (v) => v.toFixed(2),
        cellTitle: (i, j, v) => `train N=${key(s.trainContexts[i])}, test N=${key(s.testContexts[j])}: PPL ${v.toFixed(3)}`,
      }),
    });
  }
  const labels: string[] = [];
  const values: number[] = [];
  for (const m of s.models)
    for (const e of a.trainCurve.filter((x) => x.model === m)) {
      labels.push(`${m} N=${key(e.trainContext)}`);
      values.push(e.matched);
    }
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  plots.push({
    file: 'ppl-by-train-n.svg',
    title: 'Test PPL at test N = training N',
    svg: barChart({
      id: 'ppl-by-train-n',
      title: 'Test PPL at test N = training N',
      xLabel: 'model and training N',
      yLabel: 'PPL',
      labels,
      values,
      yRange: [Math.max(0, lo - (hi - lo) * 1.5 - 0.01), hi + (hi - lo) * 0.3 + 0.01],
      format: (v) => v.toFixed(2),
      width: Math.max(640, labels.length * 90),
    }),
  });
  const buckets = [...new Set(a.buckets.map((b) => b.bucket))];
  for (const m of s.models) {
    const title = `${m}: test PPL by history length (test N = training N)`;
    plots.push({
      file: `buckets-${m}.svg`,
      title,
      svg: heatmap({
        id: `buckets-${m}`,
        title,
        values: s.trainContexts.map((n) =>
          buckets.map(
            (b) => a.buckets.find((x) => x.model === m && x.bucket === b && key(x.trainContext) === key(n))?.perplexity ?? Number.NaN,
          ),
        ),
        rowLabel: (i) => key(s.trainContexts[i]),
        colLabel: (j) => buckets[j],
        xLabel: 'previous utterances available',
        yLabel: 'training N',
        format: (v) => v.toFixed(2),
      }),
    });
  }
  for (const o of a.oracle) {
    const title = `${o.model}: which training N gives each response its lowest loss`;
    plots.push({
      file: `oracle-${o.model}.svg`,
      title,
      svg: barChart({
        id: `oracle-${o.model}`,
        title,
        xLabel: 'training N (tested at N)',
        yLabel: 'share of test responses',
        labels: o.choices.map(key),
        values: o.choices.map((n) => (o.wins[key(n)] ?? 0) / o.samples),
        yRange: [0, 1],
        format: (v) => `${(100 * v).toFixed(0)}%`,
      }),
    });
  }
  for (const c of a.comparisons) {
    const title = `${c.other} / ${c.baseline} test PPL (< 1: ${c.other} better)`;
    plots.push({
      file: `ratio-${c.other}-vs-${c.baseline}.svg`,
      title,
      svg: heatmap({
        id: `ratio-${c.other}-vs-${c.baseline}`,
        title,
        values: s.trainContexts.map((n) =>
          s.testContexts.map(
            (t) => c.entries.find((e) => key(e.trainContext) === key(n) && key(e.testContext) === key(t))?.ratio ?? Number.NaN,
          ),
        ),
        rowLabel: (i) => key(s.trainContexts[i]),
        colLabel: (j) => key(s.testContexts[j]),
        xLabel: 'test N',
        yLabel: 'training N',
        format: (v) => v.toFixed(3),
      }),
    });
  }
  return plots;
}
