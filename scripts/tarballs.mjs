// Packing the workspace packages and installing the tarballs with plain npm outside the
// workspace, shared by scripts/pack-check.mjs, scripts/readme-examples.mjs and
// scripts/custom-model-check.mjs.
//
//   const packed = packPackages(dirs, dest)       // pnpm pack + checks of each tarball
//   const dir = installTarballs(base, label, files, packed)   // npm init -y; npm install <files>
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { log, pnpmCommand, root, runPnpm } from './pnpm.mjs';

export { log, root };

/** The published workspace packages, dependencies before dependents. */
export const DIRS = ['packages/tensor', 'packages/autograd', 'packages/attention', 'packages/models', 'packages/train', 'apps/cli'];
const INSTALL_TIMEOUT_MS = 180_000;
const isWin = process.platform === 'win32';

/** A check that failed: the scripts print its message as one line and exit 1. */
export class CheckError extends Error {}
export const fail = (msg) => {
  throw new CheckError(msg);
};
export const note = (msg) => console.log(`note ${msg}`);

/** Runs `main` and turns a CheckError into `[foxgate] <what> FAILED: …` and exit code 1. */
export async function runCheck(what, main) {
  try {
    await main();
  } catch (e) {
    if (!(e instanceof CheckError)) throw e;
    console.error(`[foxgate] ${what} FAILED: ${e.message}`);
    process.exitCode = 1;
  }
}

export function run(cmd, args, opts = {}) {
  return spawnSync(cmd, args, { encoding: 'utf8', shell: isWin, maxBuffer: 64 << 20, ...opts });
}

/** The last 40 lines of a child's stdout + stderr, with why it stopped when it did not exit. */
export function output(r) {
  const text = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
  const why = r.error ? `${r.error.message}\n` : r.signal ? `killed by ${r.signal}\n` : '';
  return `${why}${text.split('\n').slice(-40).join('\n')}`;
}

/** The files a package's manifest points at (main, types, bin, export targets but `source`). */
export function entryPoints(pkg) {
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
export function tarEntries(file) {
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
/** Manifest fields every published package must have (issue 22). */
const REQUIRED_FIELDS = ['description', 'keywords', 'license', 'repository', 'exports', 'files', 'engines', 'sideEffects'];

/** Bare specifiers a dist file imports (static and dynamic). */
export function importsOf(code) {
  const found = { static: new Set(), dynamic: new Set() };
  for (const m of code.matchAll(/(?:^|[^.\w$])(?:import|export)\s*(?:[\w$*{}\s,]+from\s*)?['"]([^'"]+)['"]/g)) found.static.add(m[1]);
  for (const m of code.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) found.dynamic.add(m[1]);
  return found;
}
const packageOf = (spec) => (spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);
const builtins = new Set(builtinModules);
export const isBuiltin = (spec) => spec.startsWith('node:') || builtins.has(spec) || builtins.has(spec.split('/')[0]);

/** The workspace manifests: dir → package.json. */
export function sourceManifests() {
  return new Map(DIRS.map((d) => [d, JSON.parse(readFileSync(join(root, d, 'package.json'), 'utf8'))]));
}

/** `selected` plus the workspace packages they depend on, transitively, in DIRS order. */
export function withWorkspaceDeps(selected, source = sourceManifests()) {
  const dirOf = new Map([...source].map(([d, p]) => [p.name, d]));
  const needed = new Set();
  const need = (d) => {
    if (needed.has(d)) return;
    needed.add(d);
    for (const dep of Object.keys(source.get(d).dependencies ?? {})) if (dirOf.has(dep)) need(dirOf.get(dep));
  };
  for (const d of selected) need(d);
  return DIRS.filter((d) => needed.has(d));
}

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
  const absent = REQUIRED_FIELDS.filter((f) => pkg[f] === undefined || (Array.isArray(pkg[f]) && pkg[f].length === 0));
  if (absent.length) fail(`${where}: the packed package.json lacks ${absent.join(', ')}`);
  if (!entries.has('README.md')) fail(`${where}: the tarball has no README.md`);
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

/**
 * Packs `dirs` (workspace-relative; run `pnpm build` first) into `dest` with the pinned pnpm
 * and checks each tarball: no workspace ranges left, the required manifest fields, only dist/,
 * package.json, README, LICENSE, every entry point present, no undeclared import in dist.
 * Returns { tarballs: name → file, manifests: name → packed package.json, byDir: dir → package.json }.
 */
export function packPackages(dirs, dest) {
  const source = sourceManifests();
  checkBuilt(dirs, source);
  const versions = new Map([...source.values()].map((p) => [p.name, p.version]));
  const tarballs = new Map();
  const manifests = new Map();
  const byDir = new Map();
  pnpmCommand();
  log(`packing ${dirs.length} package(s) into ${dest}`);
  for (const dir of dirs) {
    const file = pack(dir, dest);
    const pkg = checkTarball(dir, file, versions);
    tarballs.set(pkg.name, file);
    manifests.set(pkg.name, pkg);
    byDir.set(dir, pkg);
  }
  return { tarballs, manifests, byDir };
}

/** The @foxgate packages `name` needs, transitively, itself included. */
export function closure(name, manifests) {
  const seen = new Set();
  const visit = (n) => {
    if (seen.has(n)) return;
    seen.add(n);
    for (const d of Object.keys(manifests.get(n).dependencies ?? {})) if (manifests.has(d)) visit(d);
  };
  visit(name);
  return [...seen];
}

/**
 * Install-script lines npm ≥ 11 prints that are known and documented: `webgpu`'s postinstall
 * (it only clears macOS's quarantine attribute on the Dawn binary; see the tensor README).
 * Any other package with an install script, or any other npm warning, fails the install.
 */
const KNOWN_SCRIPT = /^\s*webgpu@[\d.]+\s+\(?postinstall: node build\/postinstall\.js\)?\s*$/;

/** npm's warnings: stderr lines `npm warn <topic> …`, consecutive lines of one topic as one warning. */
function npmWarnings(stderr) {
  const out = [];
  let topic = null;
  for (const line of (stderr ?? '').split('\n')) {
    const m = /^npm warn(?:ing)?\s+(\S+)/i.exec(line);
    if (!m) {
      topic = null;
      continue;
    }
    if (m[1] === topic) out[out.length - 1].push(line);
    else out.push([line]);
    topic = m[1];
  }
  return out;
}

/** Fails on an npm warning a user would have to act on (see KNOWN_SCRIPT). Returns the known ones. */
export function checkInstallWarnings(label, stderr) {
  const known = [];
  for (const lines of npmWarnings(stderr)) {
    const text = lines.join('\n');
    const body = lines.map((l) => l.replace(/^npm warn(?:ing)?\s+\S+\s?/i, '')).filter((l) => l.trim());
    const scripts = /install scripts not yet covered by allowScripts/.test(text);
    const rest = body.filter((l) => !/not yet covered by allowScripts|^Run `npm install-scripts/.test(l));
    if (scripts && rest.every((l) => KNOWN_SCRIPT.test(l))) {
      known.push(text);
      continue;
    }
    fail(`${label}: npm install printed a warning a user would have to act on:\n${text}`);
  }
  return known;
}

/**
 * `npm init -y` and `npm install <files>` (tarballs) in a fresh directory under `base`, the way a
 * user would (default log level; third-party dependencies such as `webgpu` come from the
 * registry). Checks npm's warnings (checkInstallWarnings) and that every @foxgate package it
 * installed is the packed version, once, at the top of node_modules.
 */
export function installTarballs(base, label, names, packed) {
  const { tarballs, manifests } = packed;
  const dir = mkdtempSync(join(base, `install-${label.replace(/^@foxgate\//, '').replace(/[^\w.-]/g, '_')}-`));
  const init = run('npm', ['init', '-y'], { cwd: dir });
  if (init.status !== 0) fail(`npm init -y failed in ${dir}:\n${output(init)}`);
  const all = [...new Set(names.flatMap((n) => closure(n, manifests)))];
  const files = all.map((n) => tarballs.get(n));
  const args = ['install', '--no-audit', '--no-fund', ...files];
  let r = run('npm', args, { cwd: dir, timeout: INSTALL_TIMEOUT_MS });
  if (r.status !== 0) {
    note(`${label}: npm install failed; retrying with --omit=optional. The failure was:\n${output(r)}`);
    r = run('npm', [...args, '--omit=optional'], { cwd: dir, timeout: INSTALL_TIMEOUT_MS });
    if (r.status !== 0) fail(`${label}: npm ${args.join(' ')} --omit=optional failed in ${dir}:\n${output(r)}`);
    note(`${label}: installed with --omit=optional`);
  }
  const known = checkInstallWarnings(label, r.stderr);
  if (known.length) note(`${label}: npm printed the documented webgpu install-script notice (see packages/tensor/README.md)`);
  // Each @foxgate package must be installed once, at the top: two copies would mean two
  // tensor registries / recorders and silently wrong results.
  for (const n of all) {
    const got = JSON.parse(readFileSync(join(dir, 'node_modules', n, 'package.json'), 'utf8'));
    if (got.version !== manifests.get(n).version)
      fail(`${label}: installed ${n}@${got.version}, expected the packed ${manifests.get(n).version}`);
  }
  return dir;
}
