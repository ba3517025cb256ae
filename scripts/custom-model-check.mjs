// A custom model from the published parts, as a user gets them: packs every package, installs
// the tarballs with plain npm into fresh folders outside the workspace and runs there
//
//   scripts/consumer/custom-model.mjs     (tensor + autograd + attention + models + train
//                                          installed): a two-block LM whose attention is
//                                          forgetting attention with ACP, built from the layers
//                                          of @foxgate/models, trained a few dozen AdamW steps
//                                          on the CPU; fails unless the loss falls
//   scripts/consumer/attention-webgpu.mjs (only @foxgate/attention and the @foxgate/tensor it
//                                          is used with installed): forgetting attention on
//                                          WebGPU against the CPU kernel; a `skip:` line without
//                                          an adapter (a failure with FOXGATE_REQUIRE_WEBGPU=1)
//
//   node scripts/custom-model-check.mjs          # run `pnpm build` first
//   node scripts/custom-model-check.mjs --keep   # keep the temp folder (its path is printed)
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DIRS, fail, installTarballs, log, output, packPackages, root, run, runCheck } from './tarballs.mjs';

const SCRIPT_TIMEOUT_MS = 300_000;

function runIn(dir, script) {
  copyFileSync(join(root, 'scripts/consumer', script), join(dir, script));
  const t = performance.now();
  const r = run(process.execPath, [script], {
    cwd: dir,
    timeout: SCRIPT_TIMEOUT_MS,
    shell: false,
    env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? tmpdir() },
  });
  const text = `${r.stdout ?? ''}`.trim();
  if (r.status !== 0)
    fail(`scripts/consumer/${script} ${r.signal ? `was killed (${r.signal})` : `exited ${r.status}`} in ${dir}:\n${output(r)}`);
  for (const line of text.split('\n')) if (line) console.log(`  ${line}`);
  console.log(`ok ${script} (${((performance.now() - t) / 1000).toFixed(1)} s)`);
}

async function main() {
  const keep = process.argv.includes('--keep');
  const t0 = performance.now();
  const base = mkdtempSync(join(tmpdir(), 'foxgate-custom-model-'));
  try {
    const packed = packPackages(
      DIRS.filter((d) => d !== 'apps/cli'),
      join(base, 'tarballs'),
    );
    const all = installTarballs(
      base,
      'custom-model',
      ['@foxgate/tensor', '@foxgate/autograd', '@foxgate/attention', '@foxgate/models', '@foxgate/train'],
      packed,
    );
    runIn(all, 'custom-model.mjs');
    const attention = installTarballs(base, 'attention-webgpu', ['@foxgate/attention', '@foxgate/tensor'], packed);
    runIn(attention, 'attention-webgpu.mjs');
    log(`custom model check passed in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  } finally {
    if (keep) log(`kept ${base}`);
    else rmSync(base, { recursive: true, force: true });
  }
}

runCheck('custom model check', main);
