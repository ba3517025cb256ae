import { describe, expect, it, vi } from 'vitest';
import { formatDuration, formatRate, progress } from '../src/progress.js';

function stream(isTTY: boolean, columns?: number) {
  const chunks: string[] = [];
  return { chunks, s: { isTTY, columns, write: (c: string) => void chunks.push(c) } };
}

function clock() {
  let t = 1_000_000;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

describe('progress', () => {
  it('not a TTY: plain lines at each 10% with loss, tokens/s and ETA, then a final line', () => {
    const { chunks, s } = stream(false);
    const c = clock();
    const p = progress({ total: 100, label: 'train', stream: s, now: c.now });
    for (let step = 1; step <= 100; step++) {
      c.advance(100); // 10 steps per second
      p.update(step, { loss: 5 - step / 50, tokensPerSecond: 5120 });
    }
    p.done();
    const lines = chunks.join('').trimEnd().split('\n');
    // step 1, each tenth (10, 20, … 100)
    expect(lines).toHaveLength(11);
    expect(lines[0]).toBe('train 1/100 (1%) loss 4.9800, 5.1k tok/s, ETA --');
    // after step 10 (first at step 1, 0.9 s later): 9 steps / 0.9 s = 10/s, 90 left: 9 s
    expect(lines[1]).toBe('train 10/100 (10%) loss 4.8000, 5.1k tok/s, ETA 9s');
    expect(lines[10]).toBe('train 100/100 (100%) loss 3.0000, 5.1k tok/s, in 10s');
    expect(chunks.join('')).not.toContain('\r');
    p.update(100);
    p.done();
    expect(chunks.join('').trimEnd().split('\n')).toHaveLength(11);
  });
  it('not a TTY: a line at least every 30 s on a slow job', () => {
    const { chunks, s } = stream(false);
    const c = clock();
    const p = progress({ total: 1000, stream: s, now: c.now });
    p.update(1);
    c.advance(29_000);
    p.update(2);
    c.advance(2_000);
    p.update(3);
    expect(chunks.map((l) => l.split(' ')[0])).toEqual(['1/1000', '3/1000']);
  });
  it('a TTY: one bar redrawn in place (at most every 100 ms), log lines above it, a newline at done', () => {
    const { chunks, s } = stream(true, 200);
    const c = clock();
    const p = progress({ total: 4, label: 'train', stream: s, now: c.now });
    p.update(1, { loss: 2 });
    c.advance(50);
    p.update(2, { loss: 1.5 }); // too soon: not drawn
    c.advance(100);
    p.update(3, { loss: 1.25 });
    p.log('eval at step 3: loss 1.3');
    c.advance(10);
    p.update(4, { loss: 1 }); // the last step is always drawn
    p.done();
    const out = chunks.join('');
    const frames = out.split('\r\x1b[2K').filter(Boolean);
    expect(frames[0]).toBe(`train ${'█'.repeat(6)}${'░'.repeat(18)}  1/4  25%  loss 2.0000  ETA --`);
    expect(frames[1]).toMatch(/^train █{18}░{6} {2}3\/4 {2}75% {2}loss 1\.2500 {2}ETA 0s$/);
    expect(frames[2]).toBe('eval at step 3: loss 1.3\n');
    expect(frames.at(-1)).toBe(`train ${'█'.repeat(24)}  4/4  100%  loss 1.0000  in 0s\n`);
    expect(out).not.toContain('2/4');
  });
  it('a TTY narrower than the line: the bar is cut to the width', () => {
    const { chunks, s } = stream(true, 30);
    const p = progress({ total: 10, label: 'train', stream: s });
    p.update(5, { loss: 1, tokensPerSecond: 1e6 });
    expect(chunks[0].replace('\r\x1b[2K', '')).toHaveLength(29);
  });
  it('quiet: nothing at all, not even log lines', () => {
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const p = progress({ total: 10, quiet: true });
      p.update(5, { loss: 1 });
      p.log('x');
      p.done();
      expect(out).not.toHaveBeenCalled();
      expect(err).not.toHaveBeenCalled();
    } finally {
      out.mockRestore();
      err.mockRestore();
    }
  });
  it('json: stdout stays empty (progress and log lines go to stderr)', () => {
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const p = progress({ total: 2, json: true });
      p.update(1, { loss: 1 });
      p.log('eval');
      p.update(2, { loss: 0.5 });
      p.done();
      expect(out).not.toHaveBeenCalled();
      expect(err.mock.calls.map((c) => String(c[0])).join('')).toContain('eval\n');
    } finally {
      out.mockRestore();
      err.mockRestore();
    }
  });
  it('formats durations and rates', () => {
    expect([formatDuration(0.4), formatDuration(59.6), formatDuration(80), formatDuration(7380), formatDuration(Number.NaN)]).toEqual([
      '0s',
      '1m00s',
      '1m20s',
      '2h03m',
      '--',
    ]);
    expect([formatRate(950), formatRate(5120), formatRate(12_345_678)]).toEqual(['950', '5.1k', '12.3M']);
  });
});
