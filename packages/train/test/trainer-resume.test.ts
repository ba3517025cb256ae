import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCheckpoint } from '@foxgate/models';
import { dispose } from '@foxgate/tensor';
import { afterAll, describe, expect, it } from 'vitest';
import { train } from '../src/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const childScript = join(here, 'util', 'trainer-child.ts');
const tmp = mkdtempSync(join(tmpdir(), 'foxgate-resume-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A tiny FoX-Pro on MQAR on the CPU: ~0.1 s a step. */
const RUN = {
  model: { model: 'foxPro', preset: 'tiny' },
  data: 'synthetic:mqar',
  device: 'cpu',
  batch: 4,
  context: 32,
  steps: 20,
  checkpointEvery: 5,
  logEvery: 1,
  evalEvery: 0,
};

interface Child {
  p: ChildProcess;
  lines: () => string[];
  waitFor: (re: RegExp) => Promise<string>;
  exited: Promise<number | null>;
}

function startChild(args: { config: Record<string, unknown>; out: string; blockAtStep?: number }): Child {
  const p = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', childScript, JSON.stringify(args)], {
    cwd: here,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  p.stdout?.on('data', (d) => (out += d));
  p.stderr?.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
  const lines = () => out.split('\n').filter(Boolean);
  const waitFor = (re: RegExp) =>
    new Promise<string>((resolve, reject) => {
      const t = setInterval(() => {
        const hit = lines().find((l) => re.test(l));
        if (hit) {
          clearInterval(t);
          resolve(hit);
        } else if (p.exitCode !== null || p.signalCode !== null) {
          clearInterval(t);
          reject(new Error(`child ended (${p.exitCode ?? p.signalCode}) before ${re}: ${out}\n${err}`));
        }
      }, 10);
    });
  return { p, lines, waitFor, exited };
}

const metricSteps = (out: string, kind = 'train') =>
  readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { kind: string; step: number; loss: number })
    .filter((m) => m.kind === kind);

describe('kill and resume (CPU)', () => {
  it('a child SIGKILLed after a checkpoint, resumed: the next 10 losses equal an uninterrupted run bit for bit', async () => {
    const refOut = join(tmp, 'reference');
    const ref = await train(RUN, { out: refOut, skipFinalEval: true });
    expect(ref.losses.length).toBe(20);
    expect(ref.losses.every(Number.isFinite)).toBe(true);

    // the child checkpoints at 5 and 10, runs two more steps, blocks inside step 12's onStep hook
    // (step 11's metrics line is written, step 12's not yet) and is killed there: the resume starts from step 10
    const out = join(tmp, 'killed');
    const c = startChild({ config: RUN, out, blockAtStep: 12 });
    await c.waitFor(/^blocked 12$/);
    c.p.kill('SIGKILL');
    await c.exited;
    expect(c.p.signalCode).toBe('SIGKILL');
    const lines = c.lines();
    expect(lines.filter((l) => l.startsWith('checkpoint'))).toEqual(['checkpoint 5', 'checkpoint 10']);
    // the child's own losses are the reference's (same process-independent computation)
    const childLosses = lines.filter((l) => l.startsWith('step ')).map((l) => JSON.parse(l.split(' ')[2]) as number);
    expect(childLosses).toEqual(ref.losses.slice(0, 12));
    expect(metricSteps(out).map((m) => m.step)).toEqual(Array.from({ length: 11 }, (_, i) => i + 1));

    const starts: number[] = [];
    const resumed = await train({}, { out, resume: true, skipFinalEval: true, hooks: { onStart: (s) => starts.push(s.fromStep) } });
    expect(starts).toEqual([10]);
    expect(resumed.step).toBe(20);
    expect(resumed.losses.length).toBe(10);
    for (let i = 0; i < 10; i++) expect(Object.is(resumed.losses[i], ref.losses[10 + i]), `step ${11 + i}`).toBe(true);

    // metrics.jsonl: steps 1..20 once each (the killed run's line for step 11 was replaced), same values
    const m = metricSteps(out);
    expect(m.map((x) => x.step)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(m.map((x) => x.loss)).toEqual(metricSteps(refOut).map((x) => x.loss));
    const ck = await loadCheckpoint(join(out, 'checkpoint'));
    expect((ck.extra?.train as { step?: number } | undefined)?.step).toBe(20);
    dispose(ck.params);
  });

  it('a checkpoint folder is never half-written: polled while a child checkpoints every step, killed at a random moment, then resumed', async () => {
    const out = join(tmp, 'polled');
    const config = { ...RUN, steps: 1000, checkpointEvery: 1, logEvery: 5 };
    const c = startChild({ config, out });
    await c.waitFor(/^checkpoint 1$/);
    const dir = join(out, 'checkpoint');
    const seen = new Set<number>();
    let listings = 0;
    // a tight synchronous poll until 6 replacements were seen, then on for a random 0–1 s (at most 40 s
    // in all): each listing of checkpoint/ that succeeds must be complete
    const start = performance.now();
    let until = Number.POSITIVE_INFINITY;
    while (performance.now() < Math.min(until, start + 40_000)) {
      if (seen.size >= 6 && until === Number.POSITIVE_INFINITY) until = performance.now() + Math.random() * 1000;
      let names: string[];
      let config: { foxgate?: { train?: { step: number } } };
      try {
        const before = statSync(dir).ino;
        names = readdirSync(dir).sort();
        config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
        // a listing of a folder that was replaced meanwhile (renamed away, then emptied) proves nothing
        if (statSync(dir).ino !== before) continue;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') continue; // between the two renames of a replacement
        throw e;
      }
      listings++;
      expect(names).toEqual(['config.json', 'model.safetensors', 'optimizer.safetensors']);
      seen.add(config.foxgate?.train?.step as number);
    }
    c.p.kill('SIGKILL');
    await c.exited;
    expect(listings).toBeGreaterThan(100);
    expect(seen.size).toBeGreaterThanOrEqual(6); // several replacements were watched
    // whatever moment it died at, the run resumes from an intact checkpoint
    expect(existsSync(dir) || readdirSync(out).some((f) => f.endsWith('-old'))).toBe(true);
    const r = await train({ steps: Math.max(...seen) + 3 }, { out, resume: true, skipFinalEval: true });
    expect(r.losses.length).toBeGreaterThanOrEqual(1);
    expect(r.losses.every(Number.isFinite)).toBe(true);
    expect(readdirSync(out).filter((f) => f.startsWith('.checkpoint.tmp-'))).toEqual([]);
  });
});
