// Bad flags, missing files, corrupt checkpoints and impossible configs of train / eval /
// generate: each one line on stderr (`foxgate: …`), nothing on stdout, exit code 2.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createModel, MODEL_NAMES, saveCheckpoint } from '@foxgate/models';
import { dispose, rngKey } from '@foxgate/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './util/cli-run.js';

const root = mkdtempSync(join(tmpdir(), 'fg-errors-'));
const run = join(root, 'run'); // a hand-made run folder: the default run's settings, a tiny FoX-Pro for MQAR (vocab 34)
const text = join(root, 'small.txt');

/** A copy of the run folder whose checkpoint `spoil` changes. */
function spoiled(name: string, spoil: (checkpoint: string) => void): string {
  const d = join(root, name);
  cpSync(run, d, { recursive: true });
  spoil(join(d, 'checkpoint'));
  return d;
}

const cases: [string, () => string[], RegExp][] = [];
const add = (what: string, argv: () => string[], message: RegExp) => cases.push([what, argv, message]);

add('negative steps', () => ['train', '--steps', '-3'], /^foxgate: train: --steps must be a non-negative integer ≤ 1000000000, got '-3'$/);
add(
  'unknown model',
  () => ['train', '--model', 'gpt'],
  new RegExp(`^foxgate: train: --model must be one of ${MODEL_NAMES.join(', ')}, got 'gpt'$`),
);
add(
  'unknown flag',
  () => ['eval', '--checkpoint', run, '--contxt', '8'],
  /^foxgate: eval: unknown flag '--contxt' \(did you mean --context\?\)$/,
);
add('missing --checkpoint', () => ['eval'], /^foxgate: eval: --checkpoint is required/);
add('missing --prompt', () => ['generate', '--checkpoint', run], /^foxgate: generate: --prompt is required/);
add(
  'a context longer than the text allows',
  () => ['train', '--data', `text:${text}`, '--context', '100000', '--out', join(root, 'never')],
  /^foxgate: train: --context 100000 is longer than the data allows: the validation data \(.*\) holds fewer than 100001 tokens$/,
);
add(
  'a missing data file',
  () => ['train', '--data', `text:${join(root, 'nope.txt')}`],
  /^foxgate: train: data '.*nope\.txt': no such file or folder$/,
);
add('an unknown task', () => ['train', '--data', 'synthetic:nope'], /^foxgate: train: data 'synthetic:nope': no such task/);
add(
  'a missing checkpoint folder',
  () => ['eval', '--checkpoint', join(root, 'nope')],
  /^foxgate: eval: --checkpoint .*nope: no such folder$/,
);
add(
  'a folder that is no run',
  () => ['generate', '--checkpoint', root, '--prompt', 'k1'],
  /^foxgate: generate: --checkpoint .*: no config.json \(not a run folder of foxgate train nor a checkpoint folder\)$/,
);
add(
  'a truncated model.safetensors',
  () => ['eval', '--checkpoint', spoiled('truncated', (c) => truncateSync(join(c, 'model.safetensors'), 1000))],
  /^foxgate: .*model\.safetensors/,
);
add(
  'a garbled safetensors header',
  () => [
    'generate',
    '--prompt',
    'k1',
    '--checkpoint',
    spoiled('garbled', (c) => writeFileSync(join(c, 'model.safetensors'), 'not a safetensors file at all')),
  ],
  /^foxgate: .*model\.safetensors/,
);
add(
  'a checkpoint config.json that is not JSON',
  () => ['eval', '--checkpoint', spoiled('badjson', (c) => writeFileSync(join(c, 'config.json'), '{"hidden_size": 64,'))],
  /^foxgate: checkpoint: .*config\.json: not valid JSON/,
);
add(
  'weights that do not match the config',
  () => [
    'eval',
    '--checkpoint',
    spoiled('mismatch', (c) => {
      const cfg = JSON.parse(readFileSync(join(c, 'config.json'), 'utf8'));
      writeFileSync(join(c, 'config.json'), JSON.stringify({ ...cfg, hidden_size: 128 }));
    }),
  ],
  /^foxgate: checkpoint: .*: the weights do not match config\.json/,
);
add(
  'a run folder without checkpoint/',
  () => ['eval', '--checkpoint', spoiled('nockpt', (c) => rmSync(c, { recursive: true }))],
  /^foxgate: eval: --checkpoint .*nockpt: a run folder without a checkpoint \(expected .*checkpoint\/config\.json\)$/,
);
add(
  'vocabulary mismatch (MQAR checkpoint, text data)',
  () => ['eval', '--checkpoint', run, '--data', `text:${text}`, '--device', 'cpu'],
  /^foxgate: eval: the checkpoint's vocabulary \(34 tokens\) does not match the data's \(261: byte tokens\)/,
);
add(
  'extrapolate below 2',
  () => ['eval', '--checkpoint', run, '--extrapolate', '1'],
  /^foxgate: eval: --extrapolate must be a comma list of integers/,
);
add(
  'top-p out of range',
  () => ['generate', '--checkpoint', run, '--prompt', 'k1', '--temperature', '1', '--top-p', '2'],
  /^foxgate: generate: --top-p must be a number in \(0, 1\], got '2'$/,
);
add(
  'top-k while greedy',
  () => ['generate', '--checkpoint', run, '--prompt', 'k1', '--top-k', '3'],
  /^foxgate: generate: --top-k and --top-p need sampling/,
);
add(
  'a bad --kv-evict',
  () => ['generate', '--checkpoint', run, '--prompt', 'k1', '--kv-evict', 'all'],
  /^foxgate: generate: --kv-evict must be one of none, acp, got 'all'$/,
);
add(
  'an unwritable --out',
  () => ['eval', '--checkpoint', run, '--out', join(root, 'no', 'such', 'eval.json')],
  /^foxgate: eval: --out '.*eval\.json' cannot be written: folder '.*' does not exist$/,
);

beforeAll(async () => {
  const model = createModel({ model: 'foxPro', preset: 'tiny', vocab_size: 34 });
  const params = model.init(rngKey(0));
  mkdirSync(run);
  await saveCheckpoint(join(run, 'checkpoint'), params, model.config);
  dispose(params);
  writeFileSync(join(run, 'config.json'), JSON.stringify({ run: { device: 'cpu', evalRows: 8, extrapolate: [] }, model: model.config }));
  writeFileSync(text, 'the fox and the gate.\n'.repeat(7000));
});

describe('every mistake is one line on stderr and exit code 2', () => {
  for (const [what, argv, message] of cases) {
    it(what, async () => {
      const r = await runCli(argv());
      expect(r.err, r.out.join('\n')).toHaveLength(1);
      expect(r.err[0]).toMatch(message);
      expect(r.out).toEqual([]);
      expect(r.code).toBe(2);
    });
  }
});

describe('the real process (node + tsx on the sources)', () => {
  const cli = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli.ts');
  const node = (args: string[], env: Record<string, string> = {}) =>
    spawnSync(process.execPath, ['--conditions=source', '--import', 'tsx', cli, ...args], {
      encoding: 'utf8',
      env: { ...process.env, ...env },
    });
  it('a corrupt checkpoint: exit 2, one line, no stack; FOXGATE_DEBUG=1 adds the stack', () => {
    const dir = spoiled('corrupt-process', (c) => truncateSync(join(c, 'model.safetensors'), 100));
    const r = node(['eval', '--checkpoint', dir, '--device', 'cpu']);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^foxgate: /);
    const d = node(['eval', '--checkpoint', dir, '--device', 'cpu'], { FOXGATE_DEBUG: '1' });
    expect(d.status).toBe(2);
    expect(d.stderr).toMatch(/\n\s+at /);
  });
});
