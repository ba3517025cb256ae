// `node scripts/pnpm-run.mjs <script>`: runs a root package script with the pinned pnpm.
import { runPnpm } from './pnpm.mjs';

const r = runPnpm(['run', ...process.argv.slice(2)]);
process.exit(r.status ?? 1);
