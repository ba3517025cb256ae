// Runs every package's tests (turbo run test) and prints one summary line over all of them,
// read from the JSON report each package's vitest writes.
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { log, root, runPnpm } from './pnpm.mjs';

// every workspace package with a `test` script (@foxgate/testing, the shared test utilities, has none)
const hasTests = (dir) => {
  const f = join(dir, 'package.json');
  return existsSync(f) && Boolean(JSON.parse(readFileSync(f, 'utf8')).scripts?.test);
};
const dirs = ['packages', 'apps', 'examples'].flatMap((d) => readdirSync(join(root, d)).map((p) => join(root, d, p))).filter(hasTests);
for (const d of dirs) rmSync(join(d, '.vitest-result.json'), { force: true });

log("running every package's tests: turbo run test");
const r = runPnpm(['exec', 'turbo', 'run', 'test', '--concurrency=1', '--output-logs=full', ...process.argv.slice(2)]);

let passed = 0;
let failed = 0;
let skipped = 0;
let brokenFiles = 0;
const missing = [];
for (const d of dirs) {
  const f = join(d, '.vitest-result.json');
  if (!existsSync(f)) {
    missing.push(d.slice(root.length + 1));
    continue;
  }
  const j = JSON.parse(readFileSync(f, 'utf8'));
  passed += j.numPassedTests;
  failed += j.numFailedTests;
  skipped += j.numPendingTests + (j.numTodoTests ?? 0);
  // a test file that fails to load has no failed tests, only a failed suite
  brokenFiles += (j.testResults ?? []).filter((t) => t.status === 'failed' && (t.assertionResults ?? []).length === 0).length;
}
if (missing.length) console.log(`[foxgate] no test report from: ${missing.join(', ')}`);
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped${brokenFiles ? `, ${brokenFiles} test file(s) failed to run` : ''}`);
process.exit(r.status !== 0 || failed > 0 || brokenFiles > 0 || missing.length > 0 ? 1 : 0);
