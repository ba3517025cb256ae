// Proves that each workspace package installs on its own from its packed tarball and works:
// packs every package with the pinned pnpm (which rewrites `workspace:*` to real versions),
// checks what each tarball holds, then for each package, in a fresh directory outside the
// workspace, runs `npm install <its tarball> <tarballs of the @foxgate packages it needs>` and a
// smoke script that imports the package by name and uses it.
//
//   node scripts/pack-check.mjs                 # every package (run `pnpm build` first)
//   node scripts/pack-check.mjs tensor cli      # only these (all are still packed)
//   node scripts/pack-check.mjs --keep          # keep the temp dir (its path is printed)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { log, pnpmCommand, root, runPnpm } from './pnpm.mjs';

const DIRS = ['packages/tensor', 'packages/autograd', 'packages/attention', 'packages/models', 'packages/train', 'apps/cli'];
const INSTALL_TIMEOUT_MS = 180_000;
const SMOKE_TIMEOUT_MS = 60_000;
const isWin = process.platform === 'win32';

class CheckError extends Error {}
const fail = (msg) => {
  throw new CheckError(msg);
};
const note = (msg) => console.log(`note ${msg}`);

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

// ---------------------------------------------------------------------------------------------

function run(cmd, args, opts = {}) {
  return spawnSync(cmd, args, { encoding: 'utf8', shell: isWin, maxBuffer: 64 << 20, ...opts });
}

function output(r) {
  const text = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
  const why = r.error ? `${r.error.message}\n` : r.signal ? `killed by ${r.signal}\n` : '';
  return `${why}${text.split('\n').slice(-40).join('\n')}`;
}

/** The files a package's manifest points at (main, types, bin, export targets but `source`). */
function entryPoints(pkg) {
  const files = new Set();
  const add = (p) => typeof p === 'string' && files.add(p.replace(/^\.\//, ''));
  add(pkg.main);
  add(pkg.types);
  if (typeof pkg.bin === 'string') add(pkg.bin);
  else for (const p of Object.values(pkg.bin ?? {})) add(p);
  const walk = (e) => {
    if (typeof e === 'string') add(e);
    else if (e && typeof e === 'object') for (const [cond, v] of Object.entries(e)) if (cond !== 'source') walk(v);
  };
  walk(pkg.exports);
  files.delete('package.json');
  return [...files];
}

/** name → contents of the regular files of a .tgz, without the leading `package/`. */
function tarEntries(file) {
  const data = gunzipSync(readFileSync(file));
  const out = new Map();
  let off = 0;
  let longName = null;
  while (off + 512 <= data.length) {
    const h = data.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const field = (s, e) =>
      h
        .subarray(s, e)
        .toString('utf8')
        .replace(/\0[\s\S]*$/, '');
    const size = Number.parseInt(field(124, 136).trim() || '0', 8);
    const type = field(156, 157) || '0';
    const prefix = field(345, 500);
    let name = longName ?? (prefix ? `${prefix}/${field(0, 100)}` : field(0, 100));
    longName = null;
    const body = data.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (type === 'L') longName = body.toString('utf8').replace(/\0[\s\S]*$/, '');
    if (type !== '0' && type !== '7') continue;
    name = name.replace(/^[^/]*\//, '');
    out.set(name, body);
  }
  return out;
}

const ALLOWED = [/^package\.json$/, /^dist\//, /^README(\.[a-z]+)?$/i, /^LICEN[CS]E(\.[a-z]+)?$/i];

/** Bare specifiers a dist file imports (static and dynamic). */
function importsOf(code) {
  const found = { static: new Set(), dynamic: new Set() };
  for (const m of code.matchAll(/(?:^|[^.\w$])(?:import|export)\s*(?:[\w$*{}\s,]+from\s*)?['"]([^'"]+)['"]/g)) found.static.add(m[1]);
  for (const m of code.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) found.dynamic.add(m[1]);
  return found;
}
const packageOf = (spec) => (spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);
const builtins = new Set(builtinModules);
const isBuiltin = (spec) => spec.startsWith('node:') || builtins.has(spec) || builtins.has(spec.split('/')[0]);

// ---------------------------------------------------------------------------------------------

function checkBuilt(dirs, source) {
  for (const dir of dirs) {
    const pkg = source.get(dir);
    const missing = entryPoints(pkg).filter((f) => !existsSync(join(root, dir, f)));
    if (missing.length) fail(`${dir} is not built: ${missing.join(', ')} missing. Run \`pnpm build\` (from ${root}) first.`);
  }
}

function pack(dir, dest) {
  const r = runPnpm(['pack', '--pack-destination', dest, '--json'], {
    cwd: join(root, dir),
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
  });
  if (r.status !== 0) fail(`pnpm pack failed in ${dir}:\n${output(r)}`);
  let info;
  try {
    info = JSON.parse(r.stdout.slice(r.stdout.indexOf('{')));
  } catch {
    fail(`pnpm pack in ${dir} printed no JSON:\n${output(r)}`);
  }
  if (!existsSync(info.filename)) fail(`pnpm pack in ${dir} reported ${info.filename}, which does not exist`);
  return info.filename;
}

function checkTarball(dir, file, versions) {
  const entries = tarEntries(file);
  const raw = entries.get('package.json');
  if (!raw) fail(`${dir}: the tarball has no package.json`);
  const text = raw.toString('utf8');
  const pkg = JSON.parse(text);
  const where = `${pkg.name} (${file})`;
  for (const proto of ['workspace:', 'catalog:', 'link:']) {
    if (text.includes(`"${proto}`)) fail(`${where}: the packed package.json still has a "${proto}" range:\n${text}`);
  }
  const stray = [...entries.keys()].filter((n) => !ALLOWED.some((re) => re.test(n)));
  if (stray.length) fail(`${where}: the tarball holds files other than dist/, package.json, README, LICENSE: ${stray.join(', ')}`);
  const missing = entryPoints(pkg).filter((f) => !entries.has(f));
  if (missing.length) fail(`${where}: entry points missing from the tarball: ${missing.join(', ')}`);
  const deps = { ...pkg.dependencies, ...pkg.optionalDependencies, ...pkg.peerDependencies };
  for (const [name, range] of Object.entries(deps)) {
    if (versions.has(name) && range !== versions.get(name)) {
      fail(`${where}: depends on ${name}@${range}, but the workspace has ${name}@${versions.get(name)}`);
    }
  }
  // Every bare import in dist must be a builtin, the package itself or a declared dependency.
  const declared = new Set([pkg.name, ...Object.keys(deps)]);
  for (const [name, body] of entries) {
    if (!/^dist\/.*\.(m?js|cjs)$/.test(name)) continue;
    const { static: st, dynamic: dyn } = importsOf(body.toString('utf8'));
    for (const spec of st) {
      if (spec.startsWith('.') || isBuiltin(spec) || declared.has(packageOf(spec))) continue;
      fail(`${where}: ${name} imports '${spec}', which is not in its dependencies`);
    }
    for (const spec of dyn) {
      if (spec.startsWith('.') || isBuiltin(spec) || declared.has(packageOf(spec))) continue;
      note(`${pkg.name}: ${name} dynamically imports '${spec}', which is not in its dependencies (fails at run time if reached)`);
    }
  }
  return pkg;
}

/** The @foxgate packages `name` needs, transitively, itself included. */
function closure(name, manifests) {
  const seen = new Set();
  const visit = (n) => {
    if (seen.has(n)) return;
    seen.add(n);
    for (const d of Object.keys(manifests.get(n).dependencies ?? {})) if (manifests.has(d)) visit(d);
  };
  visit(name);
  return [...seen];
}

function install(name, base, tarballs, manifests) {
  const dir = mkdtempSync(join(base, `install-${name.replace(/^@foxgate\//, '')}-`));
  const init = run('npm', ['init', '-y'], { cwd: dir });
  if (init.status !== 0) fail(`npm init -y failed in ${dir}:\n${output(init)}`);
  const files = closure(name, manifests).map((n) => tarballs.get(n));
  const args = ['install', '--no-audit', '--no-fund', '--loglevel=error', ...files];
  let r = run('npm', args, { cwd: dir, timeout: INSTALL_TIMEOUT_MS });
  if (r.status !== 0) {
    note(`${name}: npm install failed; retrying with --omit=optional. The failure was:\n${output(r)}`);
    r = run('npm', [...args, '--omit=optional'], { cwd: dir, timeout: INSTALL_TIMEOUT_MS });
    if (r.status !== 0) fail(`${name}: npm ${args.join(' ')} --omit=optional failed in ${dir}:\n${output(r)}`);
    note(`${name}: installed with --omit=optional`);
  }
  // Each @foxgate package must be installed once, at the top: two copies would mean two
  // tensor registries / recorders and silently wrong results.
  for (const n of closure(name, manifests)) {
    const got = JSON.parse(readFileSync(join(dir, 'node_modules', n, 'package.json'), 'utf8'));
    if (got.version !== manifests.get(n).version)
      fail(`${name}: installed ${n}@${got.version}, expected the packed ${manifests.get(n).version}`);
  }
  return dir;
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

  // Pack what the selected packages need: their workspace dependencies, transitively.
  const source = new Map(DIRS.map((d) => [d, JSON.parse(readFileSync(join(root, d, 'package.json'), 'utf8'))]));
  const dirOf = new Map([...source].map(([d, p]) => [p.name, d]));
  const needed = new Set();
  const need = (d) => {
    if (needed.has(d)) return;
    needed.add(d);
    for (const dep of Object.keys(source.get(d).dependencies ?? {})) if (dirOf.has(dep)) need(dirOf.get(dep));
  };
  for (const d of selected) need(d);
  const toPack = DIRS.filter((d) => needed.has(d));

  const t0 = performance.now();
  checkBuilt(toPack, source);
  const base = mkdtempSync(join(tmpdir(), 'foxgate-pack-check-'));
  try {
    const packDir = join(base, 'tarballs');
    const versions = new Map([...source.values()].map((p) => [p.name, p.version]));
    const tarballs = new Map();
    const manifests = new Map();
    const byDir = new Map();
    pnpmCommand();
    log(`packing ${toPack.length} package(s) into ${packDir}`);
    for (const dir of toPack) {
      const file = pack(dir, packDir);
      const pkg = checkTarball(dir, file, versions);
      tarballs.set(pkg.name, file);
      manifests.set(pkg.name, pkg);
      byDir.set(dir, pkg);
    }
    for (const dir of selected) {
      const { name, version } = byDir.get(dir);
      const installDir = install(name, base, tarballs, manifests);
      smoke(name, version, installDir);
      console.log(`ok ${name} ${version} (${(statSync(tarballs.get(name)).size / 1024).toFixed(1)} KB)`);
      if (!keep) rmSync(installDir, { recursive: true, force: true }); // webgpu alone is ~130 MB
    }
    log(`pack check passed: ${selected.length} package(s) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  } finally {
    if (keep) log(`kept ${base}`);
    else rmSync(base, { recursive: true, force: true });
  }
}

try {
  main();
} catch (e) {
  if (!(e instanceof CheckError)) throw e;
  console.error(`[foxgate] pack check FAILED: ${e.message}`);
  process.exitCode = 1;
}
