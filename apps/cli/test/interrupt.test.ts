import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const child = join(dirname(fileURLToPath(import.meta.url)), 'util', 'interrupt-child.ts');

function start(mode: 'save' | 'hang', file: string) {
  const p = spawn(process.execPath, ['--import', 'tsx', child, mode, file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout?.on('data', (d) => (out += d));
  p.stderr?.on('data', (d) => (err += d));
  const waitFor = (text: string) =>
    new Promise<void>((resolve, reject) => {
      const t = setInterval(() => {
        if (out.includes(text)) {
          clearInterval(t);
          resolve();
        } else if (p.exitCode !== null) {
          clearInterval(t);
          reject(new Error(`child exited ${p.exitCode} before '${text}': ${out} ${err}`));
        }
      }, 20);
    });
  const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
  return { p, waitFor, exited, out: () => out, err: () => err };
}

const kill = (p: ChildProcess) => p.kill('SIGINT');

describe('onInterrupt (in a child process)', () => {
  it('the first Ctrl-C runs the handler to the end, then exits 130', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'fg-int-')), 'ck');
    const c = start('save', file);
    await c.waitFor('ready');
    kill(c.p);
    expect(await c.exited).toBe(130);
    expect(readFileSync(file, 'utf8')).toBe('checkpoint');
    expect(c.out()).toContain('saved; resume with: foxgate train --resume runs/x');
    expect(c.err()).toContain('foxgate: interrupted, finishing up (press Ctrl-C again to quit at once)');
  });
  it('a second Ctrl-C while the handler runs exits at once with 130', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'fg-int-')), 'ck');
    const c = start('hang', file);
    await c.waitFor('ready');
    kill(c.p);
    await c.waitFor('saving');
    const t0 = Date.now();
    kill(c.p);
    expect(await c.exited).toBe(130);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(existsSync(file)).toBe(false);
    expect(c.err()).toContain('foxgate: interrupted again, quitting now');
  });
});
