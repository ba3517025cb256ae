// The main job of `npm run demo`: `foxgate train` with no arguments — the built-in default run
// (a tiny FoX-Pro on the synthetic MQAR task with ACP on, on the best device available). The run
// folder goes under runs/ (ignored by git); `foxgate report` and `foxgate eval` take it.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { log, root } from './pnpm.mjs';

log('running: foxgate train (the built-in default run)');
const r = spawnSync(process.execPath, [join(root, 'apps/cli/dist/cli.js'), 'train'], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
