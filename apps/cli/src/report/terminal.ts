/** Compact terminal charts of a run: unicode sparklines of the loss and bars of per-position loss. */
import type { RunData } from './run.js';

const SPARK = '▁▂▃▄▅▆▇█';
const EIGHTHS = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];

/** Means of `values` over `width` equal runs (all of them when there are fewer). */
export function downsample(values: readonly number[], width: number): number[] {
  if (values.length <= width) return [...values];
  const out: number[] = [];
  for (let i = 0; i < width; i++) {
    const a = Math.floor((i * values.length) / width);
    const b = Math.floor(((i + 1) * values.length) / width);
    let s = 0;
    for (let j = a; j < b; j++) s += values[j];
    out.push(s / (b - a));
  }
  return out;
}

/** A sparkline: one of ▁…█ per value, lowest value ▁, highest █ (all ▄ when flat). */
export function sparkline(values: readonly number[], width = 40): string {
  const v = downsample(
    values.filter((x) => Number.isFinite(x)),
    width,
  );
  if (v.length === 0) return '';
  const lo = Math.min(...v);
  const hi = Math.max(...v);
  return v.map((x) => (hi > lo ? SPARK[Math.round(((x - lo) / (hi - lo)) * (SPARK.length - 1))] : SPARK[3])).join('');
}

/** A horizontal bar of `value / max × width` cells, in eighths of a cell. */
export function bar(value: number, max: number, width = 30): string {
  if (!(max > 0) || !(value > 0)) return '';
  const eighths = Math.round((Math.min(value, max) / max) * width * 8);
  return '█'.repeat(Math.floor(eighths / 8)) + EIGHTHS[eighths % 8];
}

const f3 = (v: number) => v.toFixed(3);

/** The terminal summary of a run: loss sparklines, per-position bars, extrapolation and accuracy lines. */
export function terminalCharts(run: RunData, width = 40): string {
  const out: string[] = [];
  const line = (name: string, values: number[], extra: string) =>
    out.push(`${name.padEnd(11)} ${sparkline(values, width)}  ${f3(values[0])} → ${f3(values[values.length - 1])}${extra}`);
  if (run.train.length) {
    const last = run.train[run.train.length - 1];
    const tokens = last.tokens !== undefined ? `, ${last.tokens.toLocaleString('en-US')} tokens` : '';
    line(
      'train loss',
      run.train.map((r) => r.loss),
      ` (step ${run.train[0].step} → ${last.step}${tokens})`,
    );
  }
  if (run.evals.length)
    line(
      'val loss',
      run.evals.map((r) => r.loss),
      ` (${run.evals.length} evals, best ${f3(Math.min(...run.evals.map((r) => r.loss)))})`,
    );
  const e = run.eval;
  if (e?.perPosition) {
    out.push(`loss by position${e.context ? ` (context ${e.context})` : ''}:`);
    const max = Math.max(...e.perPosition.map((b) => b.loss));
    const labels = e.perPosition.map((b) => `${b.start}–${b.end}`);
    const w = Math.max(...labels.map((l) => l.length));
    e.perPosition.forEach((b, i) => {
      out.push(`  ${labels[i].padStart(w)}  ${bar(b.loss, max, 30).padEnd(30)}  ${f3(b.loss)}`);
    });
  }
  if (e?.extrapolation?.length) {
    const items = [
      ...(e.loss !== undefined ? [`×1 ${f3(e.loss)}`] : []),
      ...e.extrapolation.filter((x) => x.loss !== undefined).map((x) => `×${x.factor} ${f3(x.loss as number)}`),
    ];
    if (items.length) out.push(`extrapolation (mean loss): ${items.join(', ')}`);
  }
  if (e?.accuracy) {
    const a = e.accuracy;
    out.push(
      `${a.name} accuracy ${(100 * a.value).toFixed(1)}%${a.chance !== undefined ? ` (chance ${(100 * a.chance).toFixed(1)}%)` : ''}`,
    );
  }
  if (e?.perplexity !== undefined) out.push(`perplexity ${e.perplexity.toFixed(2)}`);
  if (e?.prunedFraction) out.push(`ACP pruned per layer: ${e.prunedFraction.map((p) => `${(100 * p).toFixed(1)}%`).join(', ')}`);
  return out.join('\n');
}
