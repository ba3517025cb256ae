// README examples are tests. Every fenced block marked runnable in a package README,
//
//   ```js runnable
//   import { tensor } from '@foxgate/tensor';
//   ...
//   ```
//
// is run as an ES module (`node example.mjs`, plain JavaScript, top-level await allowed) against
// the packed tarballs installed with plain npm in a temp folder outside the workspace: the code
// a user copies from the README, as written. Each block runs in its own empty folder (files it
// writes land there) and must exit 0 within EXAMPLE_TIMEOUT_MS. Also checked: each README opens
// (its first fenced block) with an `npm i …` line, and each library README has a runnable block.
//
//   node scripts/readme-examples.mjs               # every package README (run `pnpm build` first)
//   node scripts/readme-examples.mjs tensor train  # only these READMEs (all packages are installed)
//   node scripts/readme-examples.mjs --list        # print the runnable blocks, run nothing
//   node scripts/readme-examples.mjs --keep        # keep the temp folder (its path is printed)
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DIRS, fail, installTarballs, log, output, packPackages, root, run, runCheck } from './tarballs.mjs';

const EXAMPLE_TIMEOUT_MS = 120_000;
/** READMEs that may have no runnable block (a command line: its examples are shell). */
const NO_RUNNABLE_NEEDED = new Set(['apps/cli']);

/**
 * The fenced blocks of a markdown file: { line (1-based, of the opening fence), lang, info, code }.
 * A block is runnable when its info string is `js runnable` (or `javascript`/`mjs` + `runnable`).
 */
function fencedBlocks(text) {
  const blocks = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)\s*(.*)$/.exec(lines[i]);
    if (!open) continue;
    const fence = open[1];
    const body = [];
    let j = i + 1;
    while (j < lines.length && !new RegExp(`^ {0,3}${fence[0]}{${fence.length},}\\s*$`).test(lines[j])) body.push(lines[j++]);
    if (j === lines.length) fail(`unclosed fence opened at line ${i + 1}`);
    const info = open[3].trim().split(/\s+/).filter(Boolean);
    const lang = open[2].toLowerCase();
    blocks.push({ line: i + 1, lang, info, code: `${body.join('\n')}\n`, runnable: info.includes('runnable') });
    i = j;
  }
  for (const b of blocks) {
    if (b.runnable && !['js', 'mjs', 'javascript'].includes(b.lang)) {
      fail(`line ${b.line}: a runnable block must be plain JavaScript (\`\`\`js runnable), got \`\`\`${b.lang}`);
    }
  }
  return blocks;
}

function readmeBlocks(dir) {
  const file = `${dir}/README.md`;
  let blocks;
  try {
    blocks = fencedBlocks(readFileSync(join(root, file), 'utf8'));
  } catch (e) {
    fail(`${file}: ${e.message}`);
  }
  const first = blocks[0];
  if (!first || !['sh', 'bash', 'shell', 'console'].includes(first.lang) || !/^\s*npm (i|install) /m.test(first.code)) {
    fail(
      `${file}: the first fenced block must be \`\`\`sh with the \`npm i …\` line a user types (found ${first ? `\`\`\`${first.lang} at line ${first.line}` : 'none'})`,
    );
  }
  const runnable = blocks.filter((b) => b.runnable);
  if (!runnable.length && !NO_RUNNABLE_NEEDED.has(dir)) fail(`${file}: no \`\`\`js runnable example`);
  return runnable.map((b) => ({ ...b, file }));
}

async function main() {
  const args = process.argv.slice(2);
  const keep = args.includes('--keep');
  const list = args.includes('--list');
  const only = args.filter((a) => !a.startsWith('--'));
  const unknown = only.filter((a) => !DIRS.some((d) => d.endsWith(`/${a}`)));
  if (unknown.length) fail(`unknown package(s): ${unknown.join(', ')} (known: ${DIRS.map((d) => d.split('/')[1]).join(', ')})`);
  const selected = only.length ? DIRS.filter((d) => only.some((a) => d.endsWith(`/${a}`))) : DIRS;

  const examples = selected.flatMap(readmeBlocks);
  if (list) {
    for (const e of examples) console.log(`${e.file}:${e.line} (${e.code.split('\n').length - 1} lines)`);
    return;
  }
  const t0 = performance.now();
  const base = mkdtempSync(join(tmpdir(), 'foxgate-readme-examples-'));
  try {
    const packed = packPackages(DIRS, join(base, 'tarballs'));
    const installDir = installTarballs(base, 'readme-examples', [...packed.manifests.keys()], packed);
    log(`installed ${packed.manifests.size} tarballs with npm in ${installDir}; running ${examples.length} example(s)`);
    for (const [i, e] of examples.entries()) {
      const where = `${e.file}:${e.line}`;
      const dir = join(installDir, `example-${i}`);
      mkdirSync(dir);
      writeFileSync(join(dir, 'example.mjs'), e.code);
      const t = performance.now();
      const r = run(process.execPath, ['example.mjs'], {
        cwd: dir,
        timeout: EXAMPLE_TIMEOUT_MS,
        shell: false,
        env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? tmpdir() },
      });
      if (r.status !== 0) {
        // stack lines `…/example.mjs:14:19` → the README line they come from
        const text = output(r).replace(/file:\/\/\S*example\.mjs:(\d+)(:\d+)?/g, (_, n) => `${e.file}:${e.line + Number(n)}`);
        fail(
          `the example at ${where} (the block opening there) ${r.signal ? `was killed (${r.signal})` : `exited ${r.status}`} in ${dir}:\n${text}`,
        );
      }
      const printed = r.stdout.trim().split('\n').filter(Boolean);
      console.log(
        `ok ${where} (${((performance.now() - t) / 1000).toFixed(1)} s)${printed.length ? `: ${printed.at(-1).slice(0, 100)}` : ''}`,
      );
    }
    log(
      `README examples passed: ${examples.length} block(s) from ${selected.length} README(s) in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
  } finally {
    if (keep) log(`kept ${base}`);
    else rmSync(base, { recursive: true, force: true });
  }
}

runCheck('README examples', main);
