// Proves that each workspace package installs on its own from its packed tarball and works:
// packs every package with the pinned pnpm (which rewrites `workspace:*` to real versions),
// checks what each tarball holds, then for each package, in a fresh directory outside the
// workspace, runs `npm install <its tarball> <tarballs of the @foxgate packages it needs>` and a
// smoke script that imports the package by name and uses it.
//
//   node scripts/pack-check.mjs                 # every package (run `pnpm build` first)
//   node scripts/pack-check.mjs tensor cli      # only these (all are still packed)
//   node scripts/pack-check.mjs --keep          # keep the temp dir (its path is printed)
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DIRS, fail, installTarballs, log, note, output, packPackages, run, runCheck, withWorkspaceDeps } from './tarballs.mjs';

const SMOKE_TIMEOUT_MS = 60_000;

// ---------------------------------------------------------------------------------------------
// Smoke scripts, run with `node --input-type=module -e` in the install directory. Each throws
// (non-zero exit) on a wrong result; `note:` lines on stdout are passed on.

const SMOKE = {
  '@foxgate/tensor': `
    import assert from 'node:assert/strict';
    import * as fg from '@foxgate/tensor';
    const a = fg.tensor([[1, 2], [3, 4]]);
    const b = fg.tensor([[5, 6], [7, 8]]);
    const c = fg.matmul(a, b);
    assert.deepEqual([...c.shape], [2, 2], 'matmul shape');
    assert.deepEqual(Array.from(await c.data()), [19, 22, 43, 50], 'matmul values');
    // a batched matmul broadcast over the leading axis, against a hand-computed product
    const x = fg.tensor([[[1, 0], [0, 1]], [[2, 1], [1, 2]]]); // [2,2,2]
    const y = fg.tensor([[1], [-1]]); // [2,1]
    assert.deepEqual(Array.from(await fg.matmul(x, y).data()), [1, -1, 1, -1], 'batched matmul');
    assert.equal(await fg.sum(c).item(), 134, 'sum');
  `,
  '@foxgate/autograd': `
    import assert from 'node:assert/strict';
    import * as fg from '@foxgate/tensor';
    import * as ad from '@foxgate/autograd';
    if (typeof ad.grad !== 'function') {
      console.log('note: @foxgate/autograd does not export grad yet; checked the import only');
    } else {
      const x = fg.tensor([1, -2, 3.5], [3], { dtype: 'float64' });
      const g = ad.grad((p) => fg.sum(fg.mul(p.x, p.x)))({ x });
      assert.deepEqual(Array.from(await g.x.data()), [2, -4, 7], 'grad of sum(x*x) is 2x');
      if (typeof ad.valueAndGrad === 'function') {
        const r = ad.valueAndGrad((p) => fg.sum(fg.mul(p.x, p.x)))({ x });
        assert.equal(await r.value.item(), 17.25, 'value of sum(x*x)');
      }
    }
  `,
  '@foxgate/attention': `
    import assert from 'node:assert/strict';
    import * as fg from '@foxgate/tensor';
    import * as at from '@foxgate/attention';
    assert.ok(Object.keys(at).length > 0, 'the package exports nothing');
    if (typeof at.forgettingAttention !== 'function') {
      console.log('note: @foxgate/attention does not export forgettingAttention yet; checked the import only');
    } else {
      // B=1, T=2, H=1, D=1 with q = k = 0: the scores are just Λ_i − Λ_j, so (any scale)
      // o_0 = v_0 and o_1 = (f_1·v_0 + v_1) / (f_1 + 1) with f_1 = 0.5: (0.5 + 3) / 1.5 = 7/3.
      const q = fg.zeros([1, 2, 1, 1]);
      const k = fg.zeros([1, 2, 1, 1]);
      const v = fg.tensor([1, 3], [1, 2, 1, 1]);
      const logF = fg.tensor([Math.log(0.9), Math.log(0.5)], [1, 2, 1]);
      const o = at.forgettingAttention(q, k, v, logF);
      assert.deepEqual([...o.shape], [1, 2, 1, 1], 'output shape');
      const got = Array.from(await o.data());
      const want = [1, 7 / 3];
      for (let i = 0; i < 2; i++) assert.ok(Math.abs(got[i] - want[i]) < 1e-5, 'o = ' + got + ', want ' + want);
    }
  `,
  '@foxgate/models': packageConstant('@foxgate/models'),
  '@foxgate/train': packageConstant('@foxgate/train'),
  foxgate: `
    import assert from 'node:assert/strict';
    import * as cli from 'foxgate';
    assert.equal(typeof cli.main, 'function', 'foxgate exports main');
  `,
};

function packageConstant(name) {
  return `
    import assert from 'node:assert/strict';
    import * as m from '${name}';
    assert.ok(Object.keys(m).length > 0, 'the package exports nothing');
    if ('PACKAGE' in m) assert.equal(m.PACKAGE, '${name}', 'PACKAGE');
    else console.log('note: ${name} exports no PACKAGE constant; checked the import only');
  `;
}

function smoke(name, version, dir) {
  const r = run(process.execPath, ['--input-type=module', '-e', SMOKE[name]], { cwd: dir, timeout: SMOKE_TIMEOUT_MS, shell: false });
  if (r.status !== 0) fail(`${name}: the smoke test failed in ${dir}:\n${output(r)}`);
  for (const line of r.stdout.split('\n')) if (line.startsWith('note: ')) note(line.slice(6));
  if (name !== 'foxgate') return;
  const v = run('npx', ['--no', '--', 'foxgate', '--version'], { cwd: dir, timeout: SMOKE_TIMEOUT_MS });
  if (v.status !== 0) fail(`foxgate: \`npx foxgate --version\` exited ${v.status} in ${dir}:\n${output(v)}`);
  if (v.stdout.trim() !== version) fail(`foxgate: \`npx foxgate --version\` printed '${v.stdout.trim()}', expected '${version}'`);
  const i = run('npx', ['--no', '--', 'foxgate', 'info'], { cwd: dir, timeout: SMOKE_TIMEOUT_MS });
  if (i.status !== 0) fail(`foxgate: \`npx foxgate info\` exited ${i.status} in ${dir}:\n${output(i)}`);
}

function main() {
  const args = process.argv.slice(2);
  const keep = args.includes('--keep');
  const only = args.filter((a) => a !== '--keep');
  const unknown = only.filter((a) => !DIRS.some((d) => d.endsWith(`/${a}`)));
  if (unknown.length) fail(`unknown package(s): ${unknown.join(', ')} (known: ${DIRS.map((d) => d.split('/')[1]).join(', ')})`);
  const selected = only.length ? DIRS.filter((d) => only.some((a) => d.endsWith(`/${a}`))) : DIRS;

  const toPack = withWorkspaceDeps(selected);

  const t0 = performance.now();
  const base = mkdtempSync(join(tmpdir(), 'foxgate-pack-check-'));
  try {
    const packed = packPackages(toPack, join(base, 'tarballs'));
    for (const dir of selected) {
      const { name, version } = packed.byDir.get(dir);
      const installDir = installTarballs(base, name, [name], packed);
      smoke(name, version, installDir);
      console.log(`ok ${name} ${version} (${(statSync(packed.tarballs.get(name)).size / 1024).toFixed(1)} KB)`);
      if (!keep) rmSync(installDir, { recursive: true, force: true }); // webgpu alone is ~130 MB
    }
    log(`pack check passed: ${selected.length} package(s) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  } finally {
    if (keep) log(`kept ${base}`);
    else rmSync(base, { recursive: true, force: true });
  }
}

runCheck('pack check', main);
