/**
 * Small inline-SVG charts for the run report: line charts, a heat map and a bar chart. Plain
 * strings, no scripts, no external fonts; every chart is an `<svg class="plot">` with a
 * viewBox, so it scales with the page.
 */

/** Escapes text for HTML and SVG (element content and attribute values). */
export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** About `count` round tick values covering [lo, hi] (steps of 1, 2 or 5 × 10^k). */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? 10 * p;
  const ticks: number[] = [];
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k++) ticks.push(k === 0 ? 0 : Number((k * step).toPrecision(12)));
  return ticks;
}

/** Short tick labels: `0.25`, `3`, `20k`, `1.5M`. */
export function formatTick(v: number): string {
  const a = Math.abs(v);
  const trim = (s: string) => s.replace(/\.0+$/, '').replace(/(\.\d*?)0+$/, '$1');
  if (a >= 1e9) return `${trim((v / 1e9).toFixed(1))}G`;
  if (a >= 1e6) return `${trim((v / 1e6).toFixed(1))}M`;
  if (a >= 1e4) return `${trim((v / 1e3).toFixed(1))}k`;
  if (a >= 100 || a === 0) return String(Math.round(v));
  return trim(v.toPrecision(3));
}

/** Distinct line colours (colour-blind friendly order). */
export const PALETTE = ['#0072b2', '#d55e00', '#009e73', '#cc79a7', '#e69f00', '#56b4e9', '#000000', '#f0e442'];

export interface Series {
  name: string;
  points: readonly (readonly [number, number])[];
  color?: string;
  markers?: boolean;
  dashed?: boolean;
  /** Stroke width (default 2). */
  width?: number;
  opacity?: number;
}

export interface LineChartOptions {
  /** Names the plot for tests and the page (`data-plot`). */
  id: string;
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly Series[];
  /** A labelled vertical rule (e.g. the training context). */
  vline?: { x: number; label: string };
  width?: number;
  height?: number;
}

const M = { left: 58, right: 16, top: 30, bottom: 44 };

function extent(values: number[], pad: number): [number, number] {
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (lo === hi) [lo, hi] = [lo - (Math.abs(lo) || 1) * 0.5, hi + (Math.abs(hi) || 1) * 0.5];
  const d = (hi - lo) * pad;
  return [lo - d, hi + d];
}

const f1 = (v: number) => (Math.round(v * 10) / 10).toString();

function frame(id: string, title: string, w: number, h: number, body: string[]): string {
  return [
    `<svg class="plot" data-plot="${esc(id)}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="${esc(title)}">`,
    `<title>${esc(title)}</title>`,
    `<text x="${w / 2}" y="18" text-anchor="middle" class="t">${esc(title)}</text>`,
    ...body,
    '</svg>',
  ].join('\n');
}

interface Axes {
  x: (v: number) => number;
  y: (v: number) => number;
  svg: string[];
}

function axes(w: number, h: number, xr: [number, number], yr: [number, number], xLabel: string, yLabel: string, xTicks?: number[]): Axes {
  const pw = w - M.left - M.right;
  const ph = h - M.top - M.bottom;
  const x = (v: number) => M.left + ((v - xr[0]) / (xr[1] - xr[0])) * pw;
  const y = (v: number) => M.top + ph - ((v - yr[0]) / (yr[1] - yr[0])) * ph;
  const svg: string[] = [`<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" class="bg"/>`];
  for (const t of niceTicks(yr[0], yr[1], 5)) {
    if (t < yr[0] || t > yr[1]) continue;
    svg.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${f1(y(t))}" y2="${f1(y(t))}" class="grid"/>`);
    svg.push(`<text x="${M.left - 6}" y="${f1(y(t) + 4)}" text-anchor="end" class="tick">${formatTick(t)}</text>`);
  }
  for (const t of xTicks ?? niceTicks(xr[0], xr[1], 6)) {
    if (t < xr[0] || t > xr[1]) continue;
    svg.push(`<line x1="${f1(x(t))}" x2="${f1(x(t))}" y1="${M.top + ph}" y2="${M.top + ph + 4}" class="axis"/>`);
    svg.push(`<text x="${f1(x(t))}" y="${M.top + ph + 16}" text-anchor="middle" class="tick">${formatTick(t)}</text>`);
  }
  svg.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${M.top + ph}" y2="${M.top + ph}" class="axis"/>`);
  svg.push(`<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${M.top + ph}" class="axis"/>`);
  svg.push(`<text x="${M.left + pw / 2}" y="${h - 8}" text-anchor="middle" class="lab">${esc(xLabel)}</text>`);
  svg.push(`<text transform="translate(14 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle" class="lab">${esc(yLabel)}</text>`);
  return { x, y, svg };
}

/** At most `max` points, evenly picked, first and last kept. */
export function thin<T>(points: readonly T[], max: number): T[] {
  if (points.length <= max) return [...points];
  const out: T[] = [];
  const step = (points.length - 1) / (max - 1);
  for (let i = 0; i < max; i++) out.push(points[Math.round(i * step)]);
  return out;
}

function legend(series: readonly Series[], w: number): string[] {
  const out: string[] = [];
  let x = M.left + 8;
  const y = M.top + 12;
  for (const [i, s] of series.entries()) {
    const c = s.color ?? PALETTE[i % PALETTE.length];
    out.push(
      `<line x1="${x}" x2="${x + 16}" y1="${y - 4}" y2="${y - 4}" stroke="${c}" stroke-width="2.5"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/>`,
    );
    out.push(`<text x="${x + 20}" y="${y}" class="leg">${esc(s.name)}</text>`);
    x += 28 + s.name.length * 6.6;
    if (x > w - 80) break;
  }
  return out;
}

/** A line chart of one or more series (non-finite points are dropped). */
export function lineChart(o: LineChartOptions): string {
  const w = o.width ?? 640;
  const h = o.height ?? 320;
  const series = o.series.map((s) => ({
    ...s,
    points: thin(
      s.points.filter(([a, b]) => Number.isFinite(a) && Number.isFinite(b)),
      1500,
    ),
  }));
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  if (o.vline) xs.push(o.vline.x);
  const xr = extent(xs, 0.02);
  const yr = extent(ys, 0.08);
  const ax = axes(w, h, xr, yr, o.xLabel, o.yLabel);
  const body = [...ax.svg];
  if (o.vline) {
    const vx = f1(ax.x(o.vline.x));
    body.push(`<line x1="${vx}" x2="${vx}" y1="${M.top}" y2="${h - M.bottom}" class="vline"/>`);
    body.push(`<text x="${f1(ax.x(o.vline.x) + 4)}" y="${h - M.bottom - 6}" class="tick">${esc(o.vline.label)}</text>`);
  }
  for (const [i, s] of series.entries()) {
    const c = s.color ?? PALETTE[i % PALETTE.length];
    const d = s.points.map(([a, b], j) => `${j ? 'L' : 'M'}${f1(ax.x(a))} ${f1(ax.y(b))}`).join('');
    const attrs = `stroke="${c}" stroke-width="${s.width ?? 2}"${s.dashed ? ' stroke-dasharray="5 3"' : ''}${s.opacity !== undefined ? ` stroke-opacity="${s.opacity}"` : ''}`;
    if (s.points.length > 1) body.push(`<path d="${d}" fill="none" ${attrs}><title>${esc(s.name)}</title></path>`);
    if (s.markers || s.points.length === 1)
      for (const [a, b] of s.points)
        body.push(
          `<circle cx="${f1(ax.x(a))}" cy="${f1(ax.y(b))}" r="3" fill="${c}"><title>${esc(`${s.name}: ${formatTick(a)}, ${b.toPrecision(4)}`)}</title></circle>`,
        );
  }
  body.push(...legend(series, w));
  return frame(o.id, o.title, w, h, body);
}

export interface BarChartOptions {
  id: string;
  title: string;
  xLabel: string;
  yLabel: string;
  labels: readonly string[];
  values: readonly number[];
  /** Fixed y range (e.g. [0, 1] for fractions). */
  yRange?: [number, number];
  format?: (v: number) => string;
  color?: string;
  width?: number;
  height?: number;
}

/** Vertical bars, one per label, each with its value written above it. */
export function barChart(o: BarChartOptions): string {
  const w = o.width ?? 640;
  const h = o.height ?? 300;
  const vals = o.values.map((v) => (Number.isFinite(v) ? v : 0));
  const yr = o.yRange ?? [Math.min(0, ...vals), Math.max(...vals) > 0 ? Math.max(...vals) * 1.1 : 1];
  const n = vals.length;
  const ax = axes(w, h, [0, n], yr, o.xLabel, o.yLabel, []);
  const body = [...ax.svg];
  const slot = (w - M.left - M.right) / n;
  const bw = Math.min(60, slot * 0.7);
  const fmt = o.format ?? ((v: number) => v.toPrecision(3));
  for (let i = 0; i < n; i++) {
    const cx = M.left + slot * (i + 0.5);
    const y0 = ax.y(Math.max(yr[0], 0));
    const y1 = ax.y(vals[i]);
    const top = Math.min(y0, y1);
    body.push(
      `<rect x="${f1(cx - bw / 2)}" y="${f1(top)}" width="${f1(bw)}" height="${f1(Math.max(Math.abs(y0 - y1), 0.5))}" fill="${o.color ?? PALETTE[0]}"><title>${esc(`${o.labels[i]}: ${fmt(o.values[i])}`)}</title></rect>`,
    );
    body.push(`<text x="${f1(cx)}" y="${f1(top - 4)}" text-anchor="middle" class="tick">${esc(fmt(o.values[i]))}</text>`);
    body.push(`<text x="${f1(cx)}" y="${h - M.bottom + 16}" text-anchor="middle" class="tick">${esc(o.labels[i])}</text>`);
  }
  return frame(o.id, o.title, w, h, body);
}

/** Viridis-like stops, dark (low) to light (high). */
const STOPS = [
  [68, 1, 84],
  [59, 82, 139],
  [33, 145, 140],
  [94, 201, 98],
  [253, 231, 37],
];

/** The colour of t ∈ [0, 1] on the heat-map scale. */
export function heatColor(t: number): string {
  const u = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(u));
  const f = u - i;
  const c = STOPS[i].map((a, k) => Math.round(a + (STOPS[i + 1][k] - a) * f));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

export interface HeatmapOptions {
  id: string;
  title: string;
  /** values[row][col] */
  values: readonly (readonly number[])[];
  rowLabel: (r: number) => string;
  colLabel: (c: number) => string;
  xLabel: string;
  yLabel: string;
  /** Tooltip of a cell. */
  cellTitle?: (r: number, c: number, v: number) => string;
  format?: (v: number) => string;
  /** Maps a value to the colour axis (default: itself), e.g. a log scale; the legend names the values at its ends. */
  colorScale?: (v: number) => number;
  width?: number;
}

/** A heat map of a matrix (rows top to bottom) with a colour legend of its range. */
export function heatmap(o: HeatmapOptions): string {
  const rows = o.values.length;
  const cols = Math.max(...o.values.map((r) => r.length));
  const w = o.width ?? 640;
  const legendW = 70;
  const cell = Math.max(14, Math.min(60, (w - M.left - M.right - legendW) / cols));
  const h = M.top + rows * cell + M.bottom;
  const scale = o.colorScale ?? ((v: number) => v);
  const flat = o.values.flat().filter((v) => Number.isFinite(scale(v)));
  const scaled = flat.map(scale);
  const lo = Math.min(...scaled);
  const hi = Math.max(...scaled);
  const vLo = flat[scaled.indexOf(lo)];
  const vHi = flat[scaled.indexOf(hi)];
  const t = (v: number) => (hi > lo ? (scale(v) - lo) / (hi - lo) : 0.5);
  const fmt = o.format ?? ((v: number) => v.toPrecision(2));
  const body: string[] = [];
  const x0 = M.left;
  const y0 = M.top;
  for (let r = 0; r < rows; r++) {
    body.push(`<text x="${x0 - 6}" y="${f1(y0 + (r + 0.5) * cell + 4)}" text-anchor="end" class="tick">${esc(o.rowLabel(r))}</text>`);
    for (let c = 0; c < o.values[r].length; c++) {
      const v = o.values[r][c];
      const fill = Number.isFinite(scale(v)) ? heatColor(t(v)) : '#ccc';
      const tip = o.cellTitle ? o.cellTitle(r, c, v) : `${o.rowLabel(r)}, ${o.colLabel(c)}: ${v}`;
      body.push(
        `<rect x="${f1(x0 + c * cell)}" y="${f1(y0 + r * cell)}" width="${f1(cell - 1)}" height="${f1(cell - 1)}" fill="${fill}"><title>${esc(tip)}</title></rect>`,
      );
      if (cell >= 34 && Number.isFinite(v))
        body.push(
          `<text x="${f1(x0 + (c + 0.5) * cell)}" y="${f1(y0 + (r + 0.5) * cell + 3)}" text-anchor="middle" class="cell" fill="${t(v) > 0.6 ? '#000' : '#fff'}">${esc(fmt(v))}</text>`,
        );
    }
  }
  for (let c = 0; c < cols; c++)
    body.push(
      `<text x="${f1(x0 + (c + 0.5) * cell)}" y="${f1(y0 + rows * cell + 14)}" text-anchor="middle" class="tick">${esc(o.colLabel(c))}</text>`,
    );
  body.push(`<text x="${f1(x0 + (cols * cell) / 2)}" y="${h - 8}" text-anchor="middle" class="lab">${esc(o.xLabel)}</text>`);
  body.push(
    `<text transform="translate(14 ${f1(y0 + (rows * cell) / 2)}) rotate(-90)" text-anchor="middle" class="lab">${esc(o.yLabel)}</text>`,
  );
  // legend: a column of colour steps from hi (top) to lo (bottom)
  const lx = x0 + cols * cell + 16;
  const lh = Math.max(rows * cell, 60);
  const steps = 20;
  for (let i = 0; i < steps; i++)
    body.push(
      `<rect x="${lx}" y="${f1(y0 + (i * lh) / steps)}" width="12" height="${f1(lh / steps + 0.5)}" fill="${heatColor(1 - i / (steps - 1))}"/>`,
    );
  body.push(`<text x="${lx + 16}" y="${y0 + 8}" class="tick">${esc(fmt(vHi))}</text>`);
  body.push(`<text x="${lx + 16}" y="${f1(y0 + lh)}" class="tick">${esc(fmt(vLo))}</text>`);
  return frame(o.id, o.title, Math.max(w, lx + 70), Math.max(h, y0 + lh + M.bottom), body);
}
