import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts', 'src/dev.ts'],
  format: ['esm'],
  dts: { entry: ['src/index.ts', 'src/dev.ts'] },
  sourcemap: true,
  clean: true,
  target: 'node20',
  external: ['webgpu'],
});
