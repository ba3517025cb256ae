import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FoxgateError, fail } from '@foxgate/tensor';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { reportError, UsageError } from '../src/errors.js';
import { main, usage } from '../src/main.js';
import { captureConsole } from './util/cli-run.js';

afterEach(() => {
  vi.restoreAllMocks();
  delete process.env.FOXGATE_DEBUG;
});

describe('foxgate CLI', () => {
  it('prints usage listing the commands and the exit codes', async () => {
    const { out } = captureConsole();
    expect(await main([])).toBe(0);
    expect(out.join('\n')).toBe(usage());
    expect(usage()).toMatch(/info\s+version, CPU backend and WebGPU adapter/);
    expect(usage()).toMatch(/report\s+writes RUN_DIR\/report.html/);
    expect(usage()).toContain('Exit codes: 0 ok, 2 usage or input error, 130 interrupted, 70 internal error.');
  });
  it('rejects an unknown command with one line and exit code 2', async () => {
    const { err } = captureConsole();
    expect(await main(['trian'])).toBe(2);
    expect(await main(['--steps', '3'])).toBe(2);
    expect(err).toEqual([
      "foxgate: unknown command 'trian' (commands: train, eval, generate, dialog-study, report, bench, info)",
      "foxgate: unknown command '--steps' (commands: train, eval, generate, dialog-study, report, bench, info) (give the command first: foxgate <command> [options])",
    ]);
  });
  it('help COMMAND and COMMAND --help print the generated help, exit 0', async () => {
    const { out } = captureConsole();
    expect(await main(['help', 'bench'])).toBe(0);
    expect(await main(['bench', '--help'])).toBe(0);
    expect(await main(['report', '-h'])).toBe(0);
    expect(out[0]).toBe(out[1]);
    expect(out[0]).toMatch(/^usage: foxgate bench suite\.\.\. \[options\]/);
    for (const f of ['--sizes N,N,…', '--seconds X', '--head-dim N', '--json PATH', '--no-tfjs']) expect(out[0]).toContain(f);
    expect(out[2]).toMatch(/^usage: foxgate report RUN_DIR \[options\]/);
  });
  it('info names the CPU backend and the WebGPU adapter or why there is none', async () => {
    const { out } = captureConsole();
    expect(await main(['info'])).toBe(0);
    const text = out.join('\n');
    expect(text).toMatch(/^foxgate \d+\.\d+\.\d+/);
    expect(text).toContain('CPU backend: cpu');
    expect(text).toMatch(/WebGPU (adapter: .+|: not available — .+)/);
    if (process.env.FOXGATE_REQUIRE_WEBGPU === '1') expect(text).toMatch(/WebGPU adapter: .+/);
  });
});

describe('bench --json PATH', () => {
  it('writes the rows to the file (a tiny CPU run)', async () => {
    const f = join(mkdtempSync(join(tmpdir(), 'fg-cli-')), 'bench.json');
    const { out } = captureConsole();
    expect(await main(['bench', 'cpu', '--sizes', '8', '--no-tfjs', '--json', f])).toBe(0);
    const j = JSON.parse(readFileSync(f, 'utf8'));
    expect(j.rows.length).toBeGreaterThan(0);
    const rows = j.rows as { bench: string; case: string; impl: string }[];
    expect(rows.filter((r) => r.bench === 'cpu-matmul').every((r) => r.case === 'f32 8x8x8')).toBe(true);
    // the CPU attention rows: fused and reference, fwd and fwd+bwd, at B8 T128 H4 D32
    expect(rows.filter((r) => r.bench === 'cpu-attention').map((r) => `${r.impl} ${r.case}`)).toEqual([
      'foxgate cpu fused fwd f32 B=8 T=128 H=4 D=32',
      'foxgate cpu fused fwd+bwd f32 B=8 T=128 H=4 D=32',
      'foxgate cpu reference fwd f32 B=8 T=128 H=4 D=32',
      'foxgate cpu reference fwd+bwd f32 B=8 T=128 H=4 D=32',
    ]);
    expect(rows.length).toBe(rows.filter((r) => r.bench === 'cpu-matmul').length + 4);
    expect(out.join('\n')).toContain('cpu-matmul');
  });
});

describe('every argument mistake: one line on stderr, exit code 2, nothing on stdout', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fg-cli-'));
  const cases: [string[], string][] = [
    [['bench', 'attention', '--seconds', '0'], "bench: --seconds must be a number in (0, 600], got '0'"],
    [['bench', 'ops', '--seconds', 'abc'], "bench: --seconds must be a number in (0, 600], got 'abc'"],
    [['bench', 'attention', '--head-dim', '300'], 'bench: --head-dim 300 is too large (at most 256)'],
    [['bench', 'attention', '--head-dim', '-4'], "bench: --head-dim must be a positive integer ≤ 256, got '-4'"],
    [['bench', 'ops', '--head-dim', '64'], "bench: --head-dim applies to the attention suite only, not 'ops'"],
    [['bench', 'nope'], "bench: unknown suite 'nope' (suites: cpu, ops, attention, train, generate)"],
    [['bench', 'atention'], "bench: unknown suite 'atention' (suites: cpu, ops, attention, train, generate); did you mean 'attention'?"],
    [['bench'], 'bench: missing suite (usage: foxgate bench suite... [options])'],
    [['bench', 'cpu', '--sise', '8'], "bench: unknown flag '--sise' (did you mean --sizes?)"],
    [['bench', 'cpu', '--sizes'], "bench: --sizes needs a value (N,N,…; write --sizes=VALUE for a value that starts with '-')"],
    [['bench', 'cpu', '--sizes', '256,-1'], "bench: --sizes must be a comma list of positive integers ≤ 131072, got '-1' in '256,-1'"],
    [['bench', 'cpu', '--sizes', '1e12'], 'bench: --sizes item 1e12 is too large (at most 131072)'],
    [
      ['bench', 'cpu', '--sizes', '100000'],
      'bench cpu: --sizes 100000 (an 100000×100000 float32 matrix) is too large to allocate: 40.0 GB (at most 2.15 GB)',
    ],
    [['bench', 'cpu', '--no-tfjs=1'], "bench: --no-tfjs takes no value (got '--no-tfjs=1')"],
    [
      ['bench', 'cpu', '--json', join(dir, 'missing', 'b.json')],
      `bench: --json '${join(dir, 'missing', 'b.json')}' cannot be written: folder '${join(dir, 'missing')}' does not exist`,
    ],
    [['bench', 'cpu', '--json', dir], `bench: --json '${dir}' is a folder, not a file`],
    [['info', 'extra'], "info: unexpected argument 'extra' (info takes no positional arguments)"],
    [['info', '--jsn'], "info: unknown flag '--jsn' (did you mean --json?)"],
    [['report'], 'report: missing RUN_DIR (usage: foxgate report RUN_DIR [options])'],
    [['report', 'a', 'b'], "report: unexpected argument 'b' (report takes one RUN_DIR)"],
    [['report', join(dir, 'none')], `report: run folder '${join(dir, 'none')}' does not exist`],
  ];
  for (const [argv, msg] of cases)
    it(argv.join(' '), async () => {
      const { out, err } = captureConsole();
      expect(await main(argv)).toBe(2);
      expect(err).toEqual([`foxgate: ${msg}`]);
      expect(out).toEqual([]);
    });
});

describe('reportError', () => {
  it('a library FoxgateError (bad user input) is one line and exit 2', () => {
    const { err } = captureConsole();
    let e: unknown;
    try {
      fail('matmul', 'inner dimensions differ: [2,3] vs [4,5]');
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(FoxgateError);
    expect(reportError(e)).toBe(2);
    expect(err).toEqual(['foxgate: matmul: inner dimensions differ: [2,3] vs [4,5]']);
  });
  it('FOXGATE_DEBUG=1 adds the stack of a user error', () => {
    const { err } = captureConsole();
    process.env.FOXGATE_DEBUG = '1';
    expect(reportError(new UsageError('x: bad'))).toBe(2);
    expect(err[0]).toBe('foxgate: x: bad');
    expect(err[1]).toMatch(/^UsageError: x: bad\n\s+at /);
  });
  it('a Node parseArgs error is a usage error too; anything else is an internal error (70) with its stack', () => {
    const { err } = captureConsole();
    const pa = Object.assign(new TypeError("Unknown option '--x'"), { code: 'ERR_PARSE_ARGS_UNKNOWN_OPTION' });
    expect(reportError(pa)).toBe(2);
    expect(reportError(new TypeError('undefined is not a function'))).toBe(70);
    expect(err[0]).toBe("foxgate: Unknown option '--x'");
    expect(err[1]).toBe('foxgate: internal error (please report it):');
    expect(err[2]).toMatch(/TypeError: undefined is not a function\n\s+at /);
  });
  it('an error named FoxgateError from another copy of the library is a user error too', () => {
    const { err } = captureConsole();
    const e = Object.assign(new Error('load: no such file x.safetensors'), { name: 'FoxgateError' });
    expect(reportError(e)).toBe(2);
    expect(err).toEqual(['foxgate: load: no such file x.safetensors']);
  });
  it('a multi-line message prints its first line only', () => {
    const { err } = captureConsole();
    expect(reportError(new FoxgateError('load: bad file\n  details'))).toBe(2);
    expect(err).toEqual(['foxgate: load: bad file']);
  });
});

describe('the real process (node + tsx on the sources)', () => {
  const cli = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli.ts');
  const run = (...argv: string[]) =>
    spawnSync(process.execPath, ['--conditions=source', '--import', 'tsx', cli, ...argv], {
      encoding: 'utf8',
      env: { ...process.env, FOXGATE_DEBUG: '' },
    });
  it('bad flags exit 2 with one line on stderr and no stack', () => {
    for (const argv of [
      ['bench', 'cpu', '--bogus'],
      ['bench', 'ops', '--seconds'],
      ['info', '--json=yes'],
    ]) {
      const r = run(...argv);
      expect(r.status, argv.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^foxgate: /);
      expect(r.stderr).not.toMatch(/\bat \S+:\d+/);
    }
  });
  it('--version exits 0', () => {
    const r = run('--version');
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });
});
