import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: { conditions: ['source'] },
  // Vite ≥ 6 applies `resolve.conditions` to the client only: without this, workspace packages
  // resolve to their (possibly stale) dist in tests
  ssr: { resolve: { conditions: ['source', 'module', 'node', 'development|production'] } },
  test: {
    include: ['test/**/*.test.ts'],
    // lavapipe compiles the unrolled hardware kernels of wgsl-tiles.test.ts without a shader cache
    // in up to ~60 s per test on a 2-core machine (CI starts with no cache): 4× headroom
    testTimeout: 240_000,
    hookTimeout: 240_000,
    reporters: ['default', 'json'],
    outputFile: { json: '.vitest-result.json' },
  },
});
