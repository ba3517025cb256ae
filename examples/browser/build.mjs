// Bundles src/demo.js for the browser with esbuild (platform 'browser', ESM) into dist/demo.js,
// next to which index.html loads it. The workspace packages are bundled from their sources (the
// `source` export condition), so no `pnpm build` is needed first. Any import of a Node built-in
// on the way (node:fs, path, …) is an error: the browser path of @foxgate/tensor, autograd and
// attention must not have one.
//
//   node build.mjs            # writes dist/demo.js; then open index.html (see README.md)
import { builtinModules } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const builtins = new Set(builtinModules);
const isBuiltin = (spec) => spec.startsWith('node:') || builtins.has(spec) || builtins.has(spec.split('/')[0]);

/**
 * Bundles `entry` (default src/demo.js) into `outdir`. Returns { file, nodeImports, inputs, bytes }:
 * `nodeImports` lists every Node built-in some bundled file imports (`spec ← importer`), which a
 * browser bundle must not have; `inputs` the bundled files (workspace-relative).
 */
export async function bundle({ entry = join(here, 'src/demo.js'), outdir = join(here, 'dist'), minify = false } = {}) {
  const nodeImports = [];
  const watchNode = {
    name: 'no-node-builtins',
    setup(b) {
      b.onResolve({ filter: /.*/ }, (args) => {
        if (!isBuiltin(args.path)) return undefined;
        nodeImports.push(`${args.path} ← ${relative(join(here, '../..'), args.importer)}`);
        return { path: args.path, external: true };
      });
    },
  };
  const result = await esbuild.build({
    entryPoints: { demo: entry },
    outdir,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    conditions: ['source'],
    minify,
    metafile: true,
    logLevel: 'silent',
    plugins: [watchNode],
  });
  const file = join(outdir, 'demo.js');
  const out = result.metafile.outputs[relative(process.cwd(), file)] ?? Object.values(result.metafile.outputs)[0];
  return { file, nodeImports, inputs: Object.keys(result.metafile.inputs), bytes: out.bytes, warnings: result.warnings };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const r = await bundle();
  if (r.nodeImports.length) {
    console.error(`the browser bundle imports Node built-ins:\n  ${r.nodeImports.join('\n  ')}`);
    process.exit(1);
  }
  console.log(`wrote ${relative(process.cwd(), r.file)} (${(r.bytes / 1024).toFixed(0)} KB from ${r.inputs.length} files)`);
}
