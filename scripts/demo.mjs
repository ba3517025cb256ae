// The main job of `npm run demo`: for now the CLI's environment report (`foxgate info`).
import { log, runPnpm } from './pnpm.mjs';

log('running: foxgate info');
const r = runPnpm(['--filter', 'foxgate', 'exec', 'node', 'dist/cli.js', 'info']);
process.exit(r.status ?? 1);
