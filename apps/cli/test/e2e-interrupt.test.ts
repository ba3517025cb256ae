// Ctrl-C during `foxgate train` (a child process): exit 130 with a resume hint, a checkpoint on
// disk, and `--resume` continues from it to the end.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { jsonOf, runCli } from './util/cli-run.js';

const cli = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli.ts');

describe('foxgate train, interrupted', () => {
  it('SIGINT mid-run: exit 130, "Resume with" on stderr, and the checkpoint resumes to the end', async () => {
    const root = mkdtempSync(join(tmpdir(), 'fg-sigint-'));
    const out = join(root, 'run');
    const config = join(root, 'small.json');
    writeFileSync(config, JSON.stringify({ evalRows: 8, extrapolate: [], batch: 4 }));
    const p = spawn(
      process.execPath,
      ['--conditions=source', '--import', 'tsx', cli, 'train', '--config', config, '--steps', '100000', '--device', 'cpu', '--out', out],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
    // the run has started once its folder line is out; let it take a few steps, then Ctrl-C
    await new Promise<void>((resolve, reject) => {
      const t = setInterval(() => {
        if (stdout.includes('run folder:')) {
          clearInterval(t);
          setTimeout(resolve, 1500);
        } else if (p.exitCode !== null) {
          clearInterval(t);
          reject(new Error(`train exited ${p.exitCode} early: ${stdout}\n${stderr}`));
        }
      }, 20);
    });
    p.kill('SIGINT');
    const killer = setTimeout(() => p.kill('SIGKILL'), 60_000); // never leave a 100,000-step run behind
    const code = await exited;
    clearTimeout(killer);
    expect(code).toBe(130);
    expect(stderr).toContain('foxgate: stopping after this step');
    const hint = /foxgate: stopped at step (\d+); checkpoint saved\. Resume with: foxgate train --resume (.+)\n/.exec(stderr);
    expect(hint, stderr).not.toBeNull();
    const step = Number(hint?.[1]);
    expect(hint?.[2]).toBe(out);
    const saved = JSON.parse(readFileSync(join(out, 'checkpoint', 'config.json'), 'utf8')).foxgate.train;
    expect(saved.step).toBe(step);

    const r = await runCli(['train', '--resume', out, '--steps', String(step + 2), '--device', 'cpu', '--json']);
    expect(r.code, r.err.join('\n')).toBe(0);
    const j = jsonOf(r);
    expect(j.step).toBe(step + 2);
    expect(j.tokens).toBe((step + 2) * 4 * 32);
    const resumed = JSON.parse(readFileSync(join(out, 'checkpoint', 'config.json'), 'utf8')).foxgate.train;
    expect(resumed.step).toBe(step + 2);
  });
});
