import { describe, expect, it } from 'vitest';
import { barChart, esc, formatTick, heatColor, heatmap, lineChart, niceTicks, thin } from '../src/report/svg.js';

describe('svg helpers', () => {
  it('nice ticks are 1, 2 or 5 × 10^k steps inside the range', () => {
    expect(niceTicks(0, 1, 5)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(0.37, 4.1, 5)).toEqual([1, 2, 3, 4]);
    expect(niceTicks(-0.2, 10.2, 6)).toEqual([0, 2, 4, 6, 8, 10]);
    expect(niceTicks(3, 3)).toEqual([3]);
  });
  it('tick labels are short', () => {
    expect([0, 0.25, 3, 150, 20480, 409600, 1.5e6, 2e9].map(formatTick)).toEqual([
      '0',
      '0.25',
      '3',
      '150',
      '20.5k',
      '409.6k',
      '1.5M',
      '2G',
    ]);
  });
  it('escapes markup', () => {
    expect(esc(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });
  it('thins to at most n points, keeping both ends', () => {
    const t = thin(
      Array.from({ length: 101 }, (_, i) => i),
      11,
    );
    expect(t).toEqual([0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
  });
  it('heat colours run from the dark end to the light end', () => {
    expect(heatColor(0)).toBe('rgb(68,1,84)');
    expect(heatColor(0.5)).toBe('rgb(33,145,140)');
    expect(heatColor(1)).toBe('rgb(253,231,37)');
    expect(heatColor(2)).toBe('rgb(253,231,37)');
  });
});

describe('charts', () => {
  it('a line chart maps data to the plot area (hand-computed coordinates)', () => {
    // plot area x 58..624 (566 wide), y 30..276 (246 high); x range 0..10 padded 2% each side,
    // y range 0..1 padded 8%: x(0) = 58 + 566·0.2/10.4 = 68.9, y(0) = 276 − 246·0.08/1.16 = 259.0,
    // x(10) = 58 + 566·10.2/10.4 = 613.1, y(1) = 276 − 246·1.08/1.16 = 47.0
    const svg = lineChart({
      id: 'l',
      title: 'T',
      xLabel: 'x',
      yLabel: 'y',
      series: [
        {
          name: 's',
          points: [
            [0, 0],
            [10, 1],
            [5, Number.NaN],
          ],
        },
      ],
    });
    expect(svg).toContain('<path d="M68.9 259L613.1 47" fill="none"');
    expect(svg).toMatch(/^<svg class="plot" data-plot="l" xmlns="http:\/\/www.w3.org\/2000\/svg" viewBox="0 0 640 320"/);
    expect(svg.endsWith('</svg>')).toBe(true);
  });
  it('a bar chart draws one bar per value, with its label', () => {
    const svg = barChart({
      id: 'b',
      title: 'T',
      xLabel: 'layer',
      yLabel: 'f',
      labels: ['L0', 'L1'],
      values: [0.5, 0.25],
      yRange: [0, 1],
      format: (v) => `${v * 100}%`,
    });
    const rects = [...svg.matchAll(/<rect x="[\d.]+" y="([\d.]+)" width="[\d.]+" height="([\d.]+)" fill/g)].map((m) => [
      Number(m[1]),
      Number(m[2]),
    ]);
    // plot height 300 − 30 − 44 = 226: bars of 113 and 56.5 px standing on y = 256
    expect(rects).toEqual([
      [143, 113],
      [199.5, 56.5],
    ]);
    expect(svg).toContain('>50%</text>');
    expect(svg).toContain('>L1</text>');
  });
  it('a heat map colours each cell by its value on the colour scale', () => {
    const svg = heatmap({
      id: 'h',
      title: 'T',
      values: [
        [-1, -0.1],
        [-0.01, -0.001],
      ],
      rowLabel: (r) => `L${r}`,
      colLabel: (c) => `h${c}`,
      xLabel: 'head',
      yLabel: 'layer',
      colorScale: (v) => -Math.log10(-v),
    });
    const fills = [...svg.matchAll(/<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="[\d.]+" fill="(rgb\([^)]+\))"><title>/g)].map(
      (m) => m[1],
    );
    // −log10(−v) = 0, 1, 2, 3: evenly spaced over the scale
    expect(fills).toEqual([heatColor(0), heatColor(1 / 3), heatColor(2 / 3), heatColor(1)]);
  });
});
