/**
 * The run report page: one self-contained HTML file (inline CSS and SVG, no scripts, no fonts or
 * anything else fetched), with the run's key settings, headline numbers and five plots. A plot
 * whose data is missing is replaced by a one-line note.
 */
import { formatDuration } from '../progress.js';
import type { Bucket, RunData } from './run.js';
import { barChart, esc, formatTick, heatmap, lineChart, type Series } from './svg.js';

/** The plots of a report, in page order. */
export const PLOTS = [
  { id: 'loss', title: 'Loss vs tokens' },
  { id: 'per-position', title: 'Loss by position' },
  { id: 'extrapolation', title: 'Length extrapolation' },
  { id: 'gates', title: 'Forget-gate decay (mean log f)' },
  { id: 'acp', title: 'ACP pruned fraction' },
] as const;
export type PlotId = (typeof PLOTS)[number]['id'];

export interface RenderedReport {
  html: string;
  /** The plots drawn. */
  plots: PlotId[];
  /** One line per plot left out, and what was skipped while reading. */
  notes: string[];
}

type Plot = { svg: string } | { note: string };

const KEYS = ['model', 'preset', 'context', 'steps', 'batch', 'lr', 'data', 'device', 'acp', 'seed'] as const;

/** A setting of the config: top level first, then one or two levels down (`model.preset`). */
export function findSetting(config: Record<string, unknown>, key: string, depth = 2): unknown {
  if (key in config) {
    const v = config[key];
    // a model given as a config object ({model: 'foxPro', preset, …}) shows by its name
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && typeof (v as Record<string, unknown>)[key] === 'string')
      return (v as Record<string, unknown>)[key];
    return v;
  }
  if (depth === 0) return undefined;
  for (const v of Object.values(config)) {
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
      const r = findSetting(v as Record<string, unknown>, key, depth - 1);
      if (r !== undefined) return r;
    }
  }
  return undefined;
}

const show = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));
const mid = (b: Bucket) => (b.start + b.end) / 2;

function lossPlot(run: RunData): Plot {
  if (run.train.length === 0 && run.evals.length === 0) return { note: 'no train or eval records in metrics.jsonl yet' };
  const all = [...run.train, ...run.evals];
  const byTokens = all.every((r) => r.tokens !== undefined);
  const x = (r: { step: number; tokens?: number }) => (byTokens ? (r.tokens as number) : r.step);
  const series: Series[] = [];
  if (run.train.length) series.push({ name: 'train', points: run.train.map((r) => [x(r), r.loss]), color: '#0072b2', width: 1.5 });
  if (run.evals.length) series.push({ name: 'validation', points: run.evals.map((r) => [x(r), r.loss]), color: '#d55e00', markers: true });
  return {
    svg: lineChart({ id: 'loss', title: 'Loss vs tokens', xLabel: byTokens ? 'tokens seen' : 'step', yLabel: 'loss (nats/token)', series }),
  };
}

function perPositionPlot(run: RunData): Plot {
  const pp = run.eval?.perPosition;
  if (!pp) return { note: run.eval ? 'eval.json has no perPosition' : 'no eval.json (run foxgate eval)' };
  return {
    svg: lineChart({
      id: 'per-position',
      title: `Loss by position${run.eval?.context ? ` (context ${run.eval.context})` : ''}`,
      xLabel: 'position in the context (bucket middle)',
      yLabel: 'loss (nats/token)',
      series: [{ name: 'eval', points: pp.map((b) => [mid(b), b.loss]), markers: true }],
    }),
  };
}

function extrapolationPlot(run: RunData): Plot {
  const ex = run.eval?.extrapolation;
  if (!ex?.length) return { note: run.eval ? 'eval.json has no extrapolation' : 'no eval.json (run foxgate eval --extrapolate 2,4)' };
  const base = run.eval?.context;
  const curves = [
    ...(run.eval?.perPosition ? [{ factor: 1, context: base, perPosition: run.eval.perPosition }] : []),
    ...ex.filter((e) => e.perPosition),
  ];
  const ctx = (f: number, c: number | undefined) => c ?? (base ? base * f : undefined);
  if (curves.length >= 2 || (curves.length === 1 && curves[0].factor !== 1)) {
    const series: Series[] = curves.map((c) => ({
      name: `×${c.factor}${ctx(c.factor, c.context) ? ` (${ctx(c.factor, c.context)})` : ''}`,
      points: (c.perPosition as Bucket[]).map((b) => [mid(b), b.loss]),
    }));
    return {
      svg: lineChart({
        id: 'extrapolation',
        title: 'Length extrapolation: loss by position at longer contexts',
        xLabel: 'position (bucket middle)',
        yLabel: 'loss (nats/token)',
        series,
        vline: base ? { x: base, label: `trained ${base}` } : undefined,
      }),
    };
  }
  const pts = [
    ...(run.eval?.loss !== undefined ? [[1, run.eval.loss] as const] : []),
    ...ex.filter((e) => e.loss !== undefined).map((e) => [e.factor, e.loss as number] as const),
  ];
  if (pts.length === 0) return { note: 'eval.json extrapolation has neither perPosition nor loss' };
  return {
    svg: lineChart({
      id: 'extrapolation',
      title: 'Length extrapolation: mean loss by context factor',
      xLabel: 'context factor (× training context)',
      yLabel: 'loss (nats/token)',
      series: [{ name: 'eval', points: pts, markers: true }],
    }),
  };
}

function gatesPlot(run: RunData): Plot {
  const m = run.eval?.meanLogF;
  if (!m) return { note: 'no forget-gate statistics (eval.json gates.meanLogF; models without a forget gate have none)' };
  const halfLife = (v: number) => (v < 0 ? `${formatTick(Math.log(0.5) / v)} tokens` : '∞');
  return {
    svg: heatmap({
      id: 'gates',
      title: 'Mean log f per layer and head (log colour scale; nearer 0 = longer memory)',
      values: m,
      rowLabel: (r) => `L${r}`,
      colLabel: (c) => `h${c}`,
      xLabel: 'head',
      yLabel: 'layer',
      format: (v) => (Math.abs(v) >= 0.01 ? v.toFixed(2) : v.toExponential(0)),
      // decay rates span decades (f = 0.7 to f = 0.9995): colour by log10 of −log f
      colorScale: (v) => (v <= 0 ? -Math.log10(Math.max(-v, 1e-8)) : Number.NaN),
      cellTitle: (r, c, v) => `layer ${r}, head ${c}: mean log f = ${v.toPrecision(3)} (half-life ${halfLife(v)})`,
    }),
  };
}

function acpPlot(run: RunData): Plot {
  const p = run.eval?.prunedFraction;
  if (!p) return { note: 'no ACP statistics (eval.json acp.prunedFraction; the run had ACP off?)' };
  return {
    svg: barChart({
      id: 'acp',
      title: 'ACP: fraction of attention pairs pruned, per layer',
      xLabel: 'layer',
      yLabel: 'pruned fraction',
      labels: p.map((_, i) => `L${i}`),
      values: p,
      yRange: [0, 1],
      format: (v) => `${(100 * v).toFixed(1)}%`,
    }),
  };
}

const CSS = `
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
main{max-width:980px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.sub{color:#5a6272;margin:0 0 16px;word-break:break-all}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:8px 14px;min-width:120px}
.card b{display:block;font-size:19px}.card span{color:#5a6272;font-size:13px}
table{border-collapse:collapse;background:#fff}td,th{border:1px solid #dde1e7;padding:4px 10px;text-align:left}
figure{background:#fff;border:1px solid #dde1e7;border-radius:8px;margin:0 0 16px;padding:10px}
figure svg{width:100%;height:auto;display:block}
.note{color:#8a5a00;background:#fff8e6;border:1px solid #f0dca8;border-radius:6px;padding:6px 10px}
pre{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:10px;white-space:pre-wrap;word-break:break-word}
svg .t{font-size:14px;font-weight:600;fill:#1d2330}svg .tick{font-size:11px;fill:#4a5160}
svg .lab{font-size:12px;fill:#1d2330}svg .leg{font-size:12px;fill:#1d2330}svg .cell{font-size:10px}
svg .bg{fill:#fbfcfd}svg .grid{stroke:#e3e6eb}svg .axis{stroke:#6b7280}
svg .vline{stroke:#6b7280;stroke-dasharray:4 3}
`;

function cards(run: RunData): string {
  const c: [string, string][] = [];
  const last = run.train.at(-1);
  if (last) {
    c.push([String(last.step), 'steps']);
    if (last.tokens !== undefined) c.push([formatTick(last.tokens), 'tokens']);
    const tail = run.train.slice(-Math.max(1, Math.ceil(run.train.length / 10)));
    c.push([(tail.reduce((s, r) => s + r.loss, 0) / tail.length).toFixed(3), 'train loss (last 10%)']);
    const tps = run.train.map((r) => r.tokensPerSecond).filter((v): v is number => v !== undefined);
    if (tps.length) c.push([formatTick(tps.reduce((a, b) => a + b, 0) / tps.length), 'tokens/s (mean)']);
    if (last.seconds !== undefined) c.push([formatDuration(last.seconds), 'training time']);
  }
  if (run.evals.length) c.push([Math.min(...run.evals.map((r) => r.loss)).toFixed(3), 'best validation loss']);
  const e = run.eval;
  if (e?.loss !== undefined) c.push([e.loss.toFixed(3), `eval loss${e.context ? ` @ ${e.context}` : ''}`]);
  if (e?.perplexity !== undefined) c.push([e.perplexity.toFixed(2), 'perplexity']);
  if (e?.accuracy)
    c.push([
      `${(100 * e.accuracy.value).toFixed(1)}%`,
      `${e.accuracy.name} accuracy${e.accuracy.chance !== undefined ? ` (chance ${(100 * e.accuracy.chance).toFixed(1)}%)` : ''}`,
    ]);
  if (!c.length) return '';
  return `<div class="cards">${c.map(([v, l]) => `<div class="card"><b>${esc(v)}</b><span>${esc(l)}</span></div>`).join('')}</div>`;
}

function settings(run: RunData): string {
  if (!run.config) return '<p class="note">no config.json in the run folder</p>';
  const rows = KEYS.map((k) => [k, findSetting(run.config as Record<string, unknown>, k)] as const).filter(([, v]) => v !== undefined);
  const table = rows.length
    ? `<table>${rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(show(v))}</td></tr>`).join('')}</table>`
    : '<p class="note">config.json names none of the usual settings</p>';
  return `${table}<details><summary>full config.json</summary><pre>${esc(JSON.stringify(run.config, null, 2))}</pre></details>`;
}

function sample(run: RunData): string {
  const s = run.eval?.sample;
  if (!s || (s.prompt === undefined && s.text === undefined)) return '';
  return `<h2>Sample</h2>${s.prompt !== undefined ? `<p>prompt</p><pre>${esc(s.prompt)}</pre>` : ''}${s.text !== undefined ? `<p>generated</p><pre>${esc(s.text)}</pre>` : ''}`;
}

/** Renders the report page of a run. */
export function renderReport(run: RunData, opts: { title?: string; generated?: Date } = {}): RenderedReport {
  const makers: Record<PlotId, (r: RunData) => Plot> = {
    loss: lossPlot,
    'per-position': perPositionPlot,
    extrapolation: extrapolationPlot,
    gates: gatesPlot,
    acp: acpPlot,
  };
  const plots: PlotId[] = [];
  const notes: string[] = [];
  const figures = PLOTS.map(({ id, title }) => {
    const p = makers[id](run);
    if ('svg' in p) {
      plots.push(id);
      return `<h2>${esc(title)}</h2><figure>${p.svg}</figure>`;
    }
    notes.push(`${title}: ${p.note}`);
    return `<h2>${esc(title)}</h2><p class="note" data-note="${id}">${esc(p.note)}</p>`;
  });
  const title = opts.title ?? `foxgate run report: ${run.dir}`;
  const read = run.notes.length ? `<h2>Notes</h2><ul>${run.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : '';
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>${esc(title)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
<h1>foxgate run report</h1>
<p class="sub">${esc(run.dir)} · made ${esc((opts.generated ?? new Date()).toISOString().replace('T', ' ').slice(0, 16))} UTC</p>
${cards(run)}
<h2>Settings</h2>
${settings(run)}
${figures.join('\n')}
${sample(run)}
${read}
</main>
</body>
</html>
`;
  return { html, plots, notes: [...notes, ...run.notes] };
}
