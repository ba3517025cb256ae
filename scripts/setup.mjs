// Sets up what is missing for the README commands: the pinned pnpm, the dependencies
// (frozen lockfile) and the build. Idempotent: a second run installs nothing and the build
// comes from turbo's cache.
import { log, runPnpm } from './pnpm.mjs';

const major = Number(process.versions.node.split('.')[0]);
if (major < 20) {
  console.error(`[foxgate] needs Node >= 20; this is ${process.version}.`);
  process.exit(1);
}
function step(what, args) {
  log(what);
  const r = runPnpm(args);
  if (r.status !== 0) {
    console.error(`[foxgate] setup failed at: pnpm ${args.join(' ')} (exit ${r.status})`);
    process.exit(r.status ?? 1);
  }
}
step('installing dependencies: pnpm install --frozen-lockfile', ['install', '--frozen-lockfile', '--reporter=append-only']);
step('building packages: turbo run build', ['exec', 'turbo', 'run', 'build', '--output-logs=errors-only']);
log('setup done');
