// The browser path of @foxgate/tensor, @foxgate/autograd and @foxgate/attention: src/demo.js
// (which uses all three, WebGPU included) bundles with esbuild for the browser platform, and no
// bundled file imports a Node built-in (statically or by a literal dynamic import).
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bundle } from '../build.mjs';

describe('browser bundle (esbuild, platform browser)', () => {
  it('bundles the demo with no Node built-in import', async () => {
    const out = mkdtempSync(join(tmpdir(), 'fg-browser-bundle-'));
    const r = await bundle({ outdir: out });
    expect(r.nodeImports, `Node built-ins in the browser bundle:\n${r.nodeImports.join('\n')}`).toEqual([]);
    // the three packages were bundled from their sources, nothing from Dawn (the `webgpu` package)
    for (const pkg of ['tensor', 'autograd', 'attention']) expect(r.inputs.some((f) => f.includes(`packages/${pkg}/src/`))).toBe(true);
    expect(r.inputs.filter((f) => /node_modules\/(\.pnpm\/)?webgpu/.test(f))).toEqual([]);
    const code = readFileSync(r.file, 'utf8');
    expect(code).not.toMatch(/\bfrom\s*["']node:|\bimport\(\s*["']node:|\brequire\(\s*["']/);
    expect(code).toContain('navigator');
  });

  it('fails on a Node built-in (the check can fail)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fg-browser-bundle-bad-'));
    const entry = join(dir, 'bad.js');
    writeFileSync(
      entry,
      "import { readFileSync } from 'node:fs';\nimport path from 'path';\nexport const f = () => [readFileSync, path];\n",
    );
    const r = await bundle({ entry, outdir: join(dir, 'out') });
    expect(r.nodeImports.map((s) => s.split(' ')[0]).sort()).toEqual(['node:fs', 'path']);
  });
});
