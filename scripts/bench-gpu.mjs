// `pnpm bench:gpu` (`node scripts/bench-gpu.mjs [--print-only]`): builds the GPU bundle
// (scripts/gpu/build.sh: the CLI, the checks and scripts/gpu/bench-all.sh into build-gpu/, packed
// with Node + Dawn into .gpu/), then prints the one device command that reproduces every table
// of BENCHMARKS.md. --print-only skips the build and prints the command (and what .gpu/ holds).
// It never calls the device itself.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const unknown = args.filter((a) => a !== '--print-only');
if (unknown.length) {
  console.error(`bench-gpu: unknown argument ${unknown[0]} (usage: node scripts/bench-gpu.mjs [--print-only])`);
  process.exit(2);
}
const printOnly = args.includes('--print-only');

if (!printOnly) {
  const r = spawnSync('sh', [join(root, 'scripts/gpu/build.sh')], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`bench-gpu: scripts/gpu/build.sh failed (exit ${r.status ?? r.signal}); nothing to run`);
    process.exit(1);
  }
}

const info = join(root, '.gpu/app/BUILD_INFO');
const built = existsSync(join(root, '.gpu/app/bench-all.sh'));
const command = 'source .gpu/boot.sh; cd /tmp/gpuenv/app; sh bench-all.sh "$OUT"';
console.log(
  [
    '',
    built
      ? `GPU bundle in .gpu/ (${readFileSync(info, 'utf8').trim() || 'no BUILD_INFO'}).`
      : 'No bundle with bench-all.sh in .gpu/ yet: run `pnpm bench:gpu` (without --print-only) first.',
    'One device call from the repository root, carrying .gpu (run: carry [".gpu"], timeout_s 600):',
    '',
    `  ${command}`,
    '',
    'It writes to $OUT: REPORT.md (every table, the device, driver, date and bundle commit), and per step',
    'NAME.json (rows), NAME.md (markdown table), NAME.txt (output); steps.md has the exit status and seconds',
    'of each step. Time estimate ≈ 480–530 s (scripts/gpu/bench-all.sh says how; it starts no step after',
    '540 s, so a late step is recorded as skipped). Record the rows under benchmarks/<date>-h200/ and the',
    'tables in BENCHMARKS.md.',
  ].join('\n'),
);
