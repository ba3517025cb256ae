import { afterEach, describe, expect, it, vi } from 'vitest';
import { main, usage } from '../src/main.js';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
  return { out, err };
}

afterEach(() => vi.restoreAllMocks());

describe('foxgate CLI', () => {
  it('prints usage listing the commands', async () => {
    const { out } = capture();
    expect(await main([])).toBe(0);
    expect(out.join('\n')).toBe(usage());
    expect(usage()).toMatch(/info\s+version, CPU backend and WebGPU adapter/);
  });
  it('rejects an unknown command with one line and exit code 2', async () => {
    const { err } = capture();
    expect(await main(['trian'])).toBe(2);
    expect(err).toEqual(["foxgate: unknown command 'trian' (commands: info, bench)"]);
  });
  it('info names the CPU backend and the WebGPU adapter or why there is none', async () => {
    const { out } = capture();
    expect(await main(['info'])).toBe(0);
    const text = out.join('\n');
    expect(text).toMatch(/^foxgate \d+\.\d+\.\d+/);
    expect(text).toContain('CPU backend: cpu');
    expect(text).toMatch(/WebGPU (adapter: .+|: not available — .+)/);
    if (process.env.FOXGATE_REQUIRE_WEBGPU === '1') expect(text).toMatch(/WebGPU adapter: .+/);
  });
  it('bench rejects a bad --seconds with one line and exit code 2, before loading any suite', async () => {
    const { err } = capture();
    expect(await main(['bench', 'attention', '--seconds', '0'])).toBe(2);
    expect(await main(['bench', 'ops', '--seconds', 'abc'])).toBe(2);
    expect(err).toEqual([
      "foxgate: --seconds must be a number in (0, 600], got '0'",
      "foxgate: --seconds must be a number in (0, 600], got 'abc'",
    ]);
  });
  it('bench rejects a bad --head-dim, or one given to a suite without a head dim', async () => {
    const { err } = capture();
    expect(await main(['bench', 'attention', '--head-dim', '300'])).toBe(2);
    expect(await main(['bench', 'ops', '--head-dim', '64'])).toBe(2);
    expect(err).toEqual([
      "foxgate: --head-dim must be an integer in [1, 256], got '300'",
      "foxgate: --head-dim applies to the attention suite only, not 'ops'",
    ]);
  });
  it('bench rejects an unknown suite', async () => {
    const { err } = capture();
    expect(await main(['bench', 'nope'])).toBe(2);
    expect(err[0]).toBe("foxgate: unknown bench suite 'nope' (suites: cpu, ops, attention)");
  });
});
