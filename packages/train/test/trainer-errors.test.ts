import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rejectsNaming } from '@foxgate/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { train } from '../src/index.js';
import { sharedData } from './data-shared.js';

const tmp = mkdtempSync(join(tmpdir(), 'foxgate-trainer-errors-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const RUN = {
  model: { model: 'foxPro', preset: 'tiny' },
  device: 'cpu',
  batch: 2,
  context: 32,
  steps: 2,
  evalEvery: 0,
  evalRows: 2,
  extrapolate: [],
};

let done: string;
let n = 0;
/** A copy of the finished run, to break. */
const copy = () => {
  const dir = join(tmp, `copy-${n++}`);
  cpSync(done, dir, { recursive: true });
  return dir;
};
const ckpt = (dir: string, file: string) => join(dir, 'checkpoint', file);

beforeAll(async () => {
  done = join(tmp, 'done');
  await train(RUN, { out: done, skipFinalEval: true });
});

describe('corrupt or incomplete checkpoints are refused on resume, naming the file', () => {
  it('the intact copy resumes (the control)', async () => {
    const r = await train({ steps: 3 }, { out: copy(), resume: true, skipFinalEval: true });
    expect(r.step).toBe(3);
    expect(r.losses.length).toBe(1);
  });

  it('model.safetensors truncated', async () => {
    const dir = copy();
    const f = ckpt(dir, 'model.safetensors');
    truncateSync(f, Math.floor(readFileSync(f).length / 2));
    await rejectsNaming(train({ steps: 3 }, { out: dir, resume: true }), f);
  });

  it('model.safetensors cut inside its header', async () => {
    const dir = copy();
    const f = ckpt(dir, 'model.safetensors');
    truncateSync(f, 20);
    await rejectsNaming(train({ steps: 3 }, { out: dir, resume: true }), f);
  });

  it('optimizer.safetensors deleted', async () => {
    const dir = copy();
    rmSync(ckpt(dir, 'optimizer.safetensors'));
    await rejectsNaming(train({ steps: 3 }, { out: dir, resume: true }), 'optimizer.safetensors');
  });

  it('optimizer.safetensors truncated', async () => {
    const dir = copy();
    const f = ckpt(dir, 'optimizer.safetensors');
    truncateSync(f, Math.floor(readFileSync(f).length / 2));
    await rejectsNaming(train({ steps: 3 }, { out: dir, resume: true }), 'optimizer.safetensors');
  });

  it('checkpoint/config.json garbage', async () => {
    const dir = copy();
    writeFileSync(ckpt(dir, 'config.json'), '{"hidden_size": 64, oops');
    await rejectsNaming(train({ steps: 3 }, { out: dir, resume: true }), ckpt(dir, 'config.json'), /JSON/);
  });

  it('checkpoint/config.json without the training state', async () => {
    const dir = copy();
    const f = ckpt(dir, 'config.json');
    const j = JSON.parse(readFileSync(f, 'utf8'));
    delete j.foxgate;
    writeFileSync(f, JSON.stringify(j));
    await rejectsNaming(train({ steps: 3 }, { out: dir, resume: true }), f, /training state/);
  });

  it("the run's config.json garbage or missing", async () => {
    const dir = copy();
    writeFileSync(join(dir, 'config.json'), 'not json');
    await rejectsNaming(train({}, { out: dir, resume: true }), join(dir, 'config.json'), /JSON/);
    rmSync(join(dir, 'config.json'));
    await rejectsNaming(train({}, { out: dir, resume: true }), join(dir, 'config.json'), /cannot read/);
  });

  it('no checkpoint at all', async () => {
    const dir = copy();
    rmSync(join(dir, 'checkpoint'), { recursive: true });
    await rejectsNaming(train({}, { out: dir, resume: true }), /no checkpoint/, dir);
    await rejectsNaming(train({}, { out: join(tmp, 'never-made'), resume: true }), /no checkpoint/);
  });

  it('a vocabulary that no longer matches the checkpoint (the data edited in config.json)', async () => {
    const dir = copy();
    const f = join(dir, 'config.json');
    const j = JSON.parse(readFileSync(f, 'utf8'));
    j.run.task = { keys: 20 };
    writeFileSync(f, JSON.stringify(j));
    await rejectsNaming(train({}, { out: dir, resume: true }), /vocab_size/, join(dir, 'checkpoint'));
  });

  it('killed between the two renames of a checkpoint replacement: the complete old one is put back', async () => {
    const dir = copy();
    // what saveCheckpoint leaves there: the old checkpoint renamed aside, the new one in its temp folder
    renameSync(join(dir, 'checkpoint'), join(dir, '.checkpoint.tmp-123-456-old'));
    mkdirSync(join(dir, '.checkpoint.tmp-123-456'));
    writeFileSync(join(dir, '.checkpoint.tmp-123-456', 'model.safetensors'), 'half');
    const r = await train({ steps: 3 }, { out: dir, resume: true, skipFinalEval: true });
    expect(r.step).toBe(3);
    expect(readdirSync(dir).filter((f) => f.startsWith('.checkpoint'))).toEqual([]);
  });
});

describe('refused run settings and folders', () => {
  it('a resume that changes a non-resumable field', async () => {
    const dir = copy();
    await rejectsNaming(train({ lr: 0.01 }, { out: dir, resume: true }), /--resume: lr differs/, /only .*steps/);
    await rejectsNaming(train({ model: { model: 'transformer', preset: 'tiny' } }, { out: dir, resume: true }), /model differs/);
    // the same value is not a change
    const r = await train({ lr: 3e-3, steps: 3 }, { out: dir, resume: true, skipFinalEval: true });
    expect(r.step).toBe(3);
  });

  it('a new run into a folder that already holds a run', async () => {
    await rejectsNaming(train(RUN, { out: done }), /already holds a run/, done);
  });

  it('an out folder that cannot be made or written (under a regular file; also as root)', async () => {
    const file = join(tmp, 'a-file');
    writeFileSync(file, 'x');
    await rejectsNaming(train(RUN, { out: join(file, 'x') }), /cannot write there/, join(file, 'x'));
    await rejectsNaming(train(RUN, { out: file }), /not a folder/);
  });

  it('an unknown or ill-typed setting', async () => {
    await rejectsNaming(train({ ...RUN, stepz: 3 }, { out: join(tmp, 'x1') }), /unknown field 'stepz'/);
    await rejectsNaming(train({ ...RUN, batch: 0 }, { out: join(tmp, 'x2') }), /batch must be an integer/);
  });
});

describe('bad data: one line before any training', () => {
  const bad = join(tmp, 'data');
  beforeAll(() => {
    mkdirSync(join(bad, 'emptydir'), { recursive: true });
    writeFileSync(join(bad, 'empty.txt'), '');
    writeFileSync(join(bad, 'tiny.txt'), 'hello\n');
    mkdirSync(join(bad, 'dd'));
    writeFileSync(join(bad, 'dd', 'dialogues_train.txt'), 'Hello there . How are you ?\n');
    writeFileSync(join(bad, 'dd', 'dialogues_validation.txt'), 'Hi . __eou__ Fine . __eou__\n');
    writeFileSync(join(bad, 'empty.jsonl'), '\n');
    writeFileSync(join(bad, 'bad.jsonl'), '{"turns": "not a list"}\n');
  });
  const out = () => join(tmp, `bad-out-${n++}`);
  const cases: [string, Record<string, unknown>, (RegExp | string)[]][] = [
    ['a missing file', { data: 'text:/nonexistent/corpus.txt' }, ['/nonexistent/corpus.txt', /no such file/]],
    ['an empty file', { data: `text:${join(bad, 'empty.txt')}` }, ['empty.txt', /no text/]],
    ['an empty folder', { data: `text:${join(bad, 'emptydir')}` }, ['emptydir', /no text/]],
    ['a file too small to hold a document out', { data: `text:${join(bad, 'tiny.txt')}` }, ['tiny.txt', /at least 2 documents/]],
    ['a dialog file without __eou__', { data: `dailydialog:${join(bad, 'dd')}` }, ['dialogues_train.txt:1', /no __eou__/]],
    ['a DailyDialog folder that is missing', { data: `dailydialog:${join(bad, 'nope')}` }, ['nope', /not a folder/]],
    ['an empty JSONL file', { data: `jsonl:${join(bad, 'empty.jsonl')}` }, ['empty.jsonl', /no dialogs/]],
    ['a JSONL line of the wrong shape', { data: `jsonl:${join(bad, 'bad.jsonl')}` }, ['bad.jsonl:1', /turns/]],
    ['an unknown data kind', { data: 'ftp:somewhere' }, [/unknown kind/]],
    ['an unknown task', { data: 'synthetic:sorting' }, [/no such task/]],
    ['a context too short for the task', { data: 'synthetic:mqar', context: 8 }, [/T = 8/]],
  ];
  for (const [what, o, pats] of cases) {
    it(what, async () => {
      const dir = out();
      await rejectsNaming(train({ ...RUN, ...o }, { out: dir }), ...pats);
    });
  }

  it('a context too short for a dialog response (real DailyDialog)', async () => {
    await rejectsNaming(train({ ...RUN, data: `dailydialog:${sharedData('dailydialog')}`, context: 8 }, { out: out() }), /T = 8/, /T ≥/);
  });

  it('docResets on a model without forget gates', async () => {
    await rejectsNaming(
      train({ ...RUN, model: { model: 'transformer', preset: 'tiny' }, docResets: true }, { out: out() }),
      /docResets needs a FoX model/,
    );
  });
});
