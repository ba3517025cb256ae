// Finds the pinned pnpm: an installed one of the right version, else `npx pnpm@VERSION`.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const log = (msg) => console.log(`[foxgate] ${msg}`);

export function pinnedVersion() {
  const pm = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).packageManager;
  return pm.split('@')[1];
}

let cached;
export function pnpmCommand() {
  if (cached) return cached;
  const want = pinnedVersion();
  const probe = spawnSync('pnpm', ['--version'], { encoding: 'utf8', shell: process.platform === 'win32' });
  if (probe.status === 0 && probe.stdout.trim() === want) {
    log(`using pnpm ${want}`);
    cached = ['pnpm'];
  } else {
    const found = probe.status === 0 ? `pnpm ${probe.stdout.trim()} is installed` : 'pnpm is not installed';
    log(`${found}; using the pinned pnpm ${want} through npx`);
    cached = ['npx', '--yes', `pnpm@${want}`];
  }
  return cached;
}

export function runPnpm(args, opts = {}) {
  const pnpm = pnpmCommand();
  return spawnSync(pnpm[0], [...pnpm.slice(1), ...args], {
    cwd: root,
    stdio: 'inherit',
    ...opts,
    env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1', ...(opts.env ?? {}) },
  });
}
