import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { checkAllocation, closest, defineCommand, editDistance, flag, helpText, outputFlags, parseCommand } from '../src/args.js';
import { UsageError } from '../src/errors.js';

const spec = {
  name: 'train',
  summary: 'trains a model',
  args: { name: 'RUN', help: 'a name', max: 1 },
  flags: {
    model: flag.enum(['foxPro', 'fox', 'transformer'], { help: 'model family', default: 'foxPro' }),
    steps: flag.nonNegativeInt({ help: 'optimizer steps', default: 100, max: 1_000_000 }),
    batch: flag.positiveInt({ help: 'sequences per step', max: 4096 }),
    offset: flag.int({ help: 'an offset', min: -10, max: 10 }),
    lr: flag.float({ help: 'learning rate', min: 0, minExclusive: true, max: 1 }),
    extrapolate: flag.intList({ help: 'context factors', min: 1, max: 64, keywords: ['all'] }),
    suites: flag.list({ help: 'suites', choices: ['cpu', 'ops'] }),
    prompt: flag.string({ help: 'prompt text' }),
    checkpoint: flag.file({ help: 'checkpoint folder', required: true }),
    json: flag.file({ help: 'result file', writable: true }),
    quiet: flag.bool({ help: 'no progress', short: 'q' }),
    'eval-every': flag.positiveInt({ help: 'steps between evaluations', default: 50 }),
  },
} as const;

const parse = (...argv: string[]) => parseCommand(spec, ['--checkpoint', 'ck', ...argv]);
const error = (...argv: string[]): string => {
  try {
    parse(...argv);
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error(`no error for ${argv.join(' ')}`);
};

describe('parseCommand: values', () => {
  it('reads typed values, defaults, camel-cased keys and positionals', () => {
    const p = parse('--steps', '0', '--batch=32', '--lr', '3e-4', '--offset', '-5', '--extrapolate', '2,4,all', '-q', 'run1');
    expect(p.flags).toEqual({
      model: 'foxPro',
      steps: 0,
      batch: 32,
      offset: -5,
      lr: 3e-4,
      extrapolate: [2, 4, 'all'],
      suites: undefined,
      prompt: undefined,
      checkpoint: 'ck',
      json: undefined,
      quiet: true,
      evalEvery: 50,
    });
    expect(p.args).toEqual(['run1']);
    expect(parse('--suites', 'ops,cpu', '--eval-every', '1e3').flags).toMatchObject({ suites: ['ops', 'cpu'], evalEvery: 1000 });
    expect(parse('--', '--not-a-flag').args).toEqual(['--not-a-flag']);
    expect(parse('--prompt=--hi there').flags.prompt).toBe('--hi there');
  });
  it('infers the value types: defaulted and required flags are never undefined', () => {
    const p = parse();
    expectTypeOf(p.flags.model).toEqualTypeOf<'foxPro' | 'fox' | 'transformer'>();
    expectTypeOf(p.flags.steps).toEqualTypeOf<number>();
    expectTypeOf(p.flags.batch).toEqualTypeOf<number | undefined>();
    expectTypeOf(p.flags.checkpoint).toEqualTypeOf<string>();
    expectTypeOf(p.flags.quiet).toEqualTypeOf<boolean>();
    expectTypeOf(p.flags.evalEvery).toEqualTypeOf<number>();
    expectTypeOf(p.flags.extrapolate).toEqualTypeOf<(number | 'all')[] | undefined>();
    expectTypeOf(p.flags.suites).toEqualTypeOf<('cpu' | 'ops')[] | undefined>();
  });
});

describe('parseCommand: every mistake is a one-line UsageError naming the command and flag', () => {
  const cases: [string[], string][] = [
    [['--stpes', '3'], "train: unknown flag '--stpes' (did you mean --steps?)"],
    [['--eval', '3'], "train: unknown flag '--eval' (did you mean --eval-every?)"],
    [['--zzzzzz'], "train: unknown flag '--zzzzzz' (see 'foxgate train --help')"],
    [['-x'], "train: unknown flag '-x' (see 'foxgate train --help')"],
    [['-steps', '3'], "train: unknown flag '-steps' (flags are written --name; see 'foxgate train --help')"],
    [['--steps'], "train: --steps needs a value (N; write --steps=VALUE for a value that starts with '-')"],
    [['--steps', '--quiet'], "train: --steps needs a value (N; write --steps=VALUE for a value that starts with '-')"],
    [['--prompt', '-q'], "train: --prompt needs a value (TEXT; write --prompt=VALUE for a value that starts with '-')"],
    [['--steps', '-5'], "train: --steps must be a non-negative integer ≤ 1000000, got '-5'"],
    [['--steps', '2.5'], "train: --steps must be a non-negative integer ≤ 1000000, got '2.5'"],
    [['--steps', 'ten'], "train: --steps must be a non-negative integer ≤ 1000000, got 'ten'"],
    [['--steps', ''], "train: --steps must be a non-negative integer ≤ 1000000, got ''"],
    [['--steps', '0x10'], "train: --steps must be a non-negative integer ≤ 1000000, got '0x10'"],
    [['--batch', '0'], "train: --batch must be a positive integer ≤ 4096, got '0'"],
    [['--batch', '1e12'], 'train: --batch 1e12 is too large (at most 4096)'],
    [['--eval-every', '1e300'], 'train: --eval-every 1e300 is too large (at most 9007199254740991)'],
    [['--offset', '11'], 'train: --offset 11 is too large (at most 10)'],
    [['--offset', '-11'], "train: --offset must be an integer in [-10, 10], got '-11'"],
    [['--lr', '0'], "train: --lr must be a number in (0, 1], got '0'"],
    [['--lr', 'NaN'], "train: --lr must be a number in (0, 1], got 'NaN'"],
    [['--lr', 'Infinity'], "train: --lr must be a number in (0, 1], got 'Infinity'"],
    [['--model', 'foxpro'], "train: --model must be one of foxPro, fox, transformer, got 'foxpro' (did you mean 'foxPro'?)"],
    [['--model', 'lstm'], "train: --model must be one of foxPro, fox, transformer, got 'lstm'"],
    [['--extrapolate', '2,,4'], "train: --extrapolate has an empty item in '2,,4' (write items separated by commas: 2,4)"],
    [['--extrapolate', '2,x'], "train: --extrapolate must be a comma list of positive integers ≤ 64 or 'all', got 'x' in '2,x'"],
    [['--extrapolate', '0'], "train: --extrapolate must be a comma list of positive integers ≤ 64 or 'all', got '0' in '0'"],
    [['--extrapolate', '2,128'], 'train: --extrapolate item 128 is too large (at most 64)'],
    [['--suites', 'cpu,gpu'], "train: --suites items must be among cpu, ops, got 'gpu' (did you mean 'cpu'?)"],
    [['--suites', 'cpu,wxyz'], "train: --suites items must be among cpu, ops, got 'wxyz'"],
    [['--suites', 'cpu,opz'], "train: --suites items must be among cpu, ops, got 'opz' (did you mean 'ops'?)"],
    [['--quiet=yes'], "train: --quiet takes no value (got '--quiet=yes')"],
    [['--steps', '1', '--steps', '2'], 'train: --steps is given twice'],
    [['--prompt', ''], 'train: --prompt must not be empty'],
    [['a', 'b'], "train: unexpected argument 'b' (train takes one RUN)"],
  ];
  for (const [argv, msg] of cases)
    it(argv.join(' ') || '(none)', () => {
      const m = error(...argv);
      expect(m).toBe(msg);
      expect(m).not.toContain('\n');
    });
  it('a missing required flag', () => {
    expect(() => parseCommand(spec, [])).toThrow(new UsageError('train: --checkpoint is required (PATH: checkpoint folder)'));
  });
  it('an unwritable --json path, checked at parse time without creating the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fg-args-'));
    expect(error('--json', join(dir, 'no', 'such', 'out.json'))).toBe(
      `train: --json '${join(dir, 'no', 'such', 'out.json')}' cannot be written: folder '${join(dir, 'no', 'such')}' does not exist`,
    );
    expect(error('--json', dir)).toBe(`train: --json '${dir}' is a folder, not a file`);
    writeFileSync(join(dir, 'f'), 'x');
    expect(error('--json', join(dir, 'f', 'out.json'))).toBe(
      `train: --json '${join(dir, 'f', 'out.json')}' cannot be written: '${join(dir, 'f')}' is not a folder`,
    );
    expect(parse('--json', join(dir, 'out.json')).flags.json).toBe(join(dir, 'out.json'));
  });
  it('positional counts and choices', () => {
    const s = {
      name: 'bench',
      summary: 's',
      args: { name: 'suite', help: 'h', min: 1, max: 3, choices: ['cpu', 'ops', 'attention'] },
      flags: {},
    };
    expect(parseCommand(s, ['ops', 'cpu']).args).toEqual(['ops', 'cpu']);
    expect(() => parseCommand(s, [])).toThrow('bench: missing suite (usage: foxgate bench suite... [options])');
    expect(() => parseCommand(s, ['opz'])).toThrow("bench: unknown suite 'opz' (suites: cpu, ops, attention); did you mean 'ops'?");
    expect(() => parseCommand(s, ['cpu', 'ops', 'attention', 'cpu'])).toThrow(
      "bench: unexpected argument 'cpu' (bench takes at most 3 suite)",
    );
    const none = { name: 'info', summary: 's', flags: {} };
    expect(() => parseCommand(none, ['x'])).toThrow("info: unexpected argument 'x' (info takes no positional arguments)");
  });
});

describe('outputFlags', () => {
  it('spreads into a command: --quiet / -q and --json, typed boolean', () => {
    const s = { name: 'eval', summary: 's', flags: { ...outputFlags, context: flag.positiveInt({ help: 'c', default: 256 }) } };
    const p = parseCommand(s, ['-q', '--json']);
    expect(p.flags).toEqual({ quiet: true, json: true, context: 256 });
    expectTypeOf(p.flags.json).toEqualTypeOf<boolean>();
    expectTypeOf(p.flags.context).toEqualTypeOf<number>();
  });
});

describe('help text and defineCommand', () => {
  it('lists every flag with its value, range and default', () => {
    const h = helpText(spec);
    expect(h.split('\n')[0]).toBe('usage: foxgate train [RUN] --checkpoint PATH [options]');
    expect(h).toContain('--model foxPro|fox|transformer  model family (default foxPro)');
    expect(h).toMatch(/--steps N +optimizer steps \(non-negative integer ≤ 1000000; default 100\)/);
    expect(h).toMatch(/--lr X +learning rate \(number in \(0, 1\]\)/);
    expect(h).toMatch(/--checkpoint PATH +checkpoint folder \(required\)/);
    expect(h).toMatch(/-q, --quiet +no progress\n/);
    expect(h).toMatch(/-h, --help +show this help/);
  });
  it('--help prints the help and exits 0 even with other mistakes; run gets typed values', async () => {
    const seen: unknown[] = [];
    const cmd = defineCommand(
      { name: 'x', summary: 'sum', flags: { n: flag.positiveInt({ help: 'n', default: 2 }) } },
      async ({ flags }) => {
        seen.push(flags.n);
        return 0;
      },
    );
    const logs: string[] = [];
    const orig = console.log;
    console.log = (s: string) => void logs.push(s);
    try {
      expect(await cmd.run(['--bogus', '--help'])).toBe(0);
    } finally {
      console.log = orig;
    }
    expect(logs).toEqual([cmd.help()]);
    expect(await cmd.run(['--n', '5'])).toBe(0);
    expect(seen).toEqual([5]);
    await expect(cmd.run(['--n', '-1'])).rejects.toThrow("x: --n must be a positive integer, got '-1'");
  });
});

describe('helpers', () => {
  it('edit distance and closest', () => {
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('', 'abc')).toBe(3);
    expect(closest('sise', ['sizes', 'seconds'])).toBe('sizes');
    expect(closest('head', ['sizes', 'head-dim'])).toBe('head-dim');
    expect(closest('qqqq', ['sizes', 'head-dim'])).toBeUndefined();
  });
  it('checkAllocation refuses a size over the limit, in one line with the bytes', () => {
    expect(() => checkAllocation('--batch 1000 × --context 1000000', 1e9, 4, 2 ** 31)).toThrow(
      new UsageError('--batch 1000 × --context 1000000 is too large to allocate: 4.00 GB (at most 2.15 GB)'),
    );
    expect(() => checkAllocation('x', 2 ** 29, 4, 2 ** 31)).not.toThrow();
  });
});
