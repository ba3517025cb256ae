/** Where the real corpora are: $FOXGATE_DATA_DIR, else ../shared/data relative to the repo root. */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

export function sharedData(...parts: string[]): string {
  const dir = process.env.FOXGATE_DATA_DIR ?? join(repoRoot, '../shared/data');
  const p = join(dir, ...parts);
  if (!existsSync(p)) {
    throw new Error(`shared data missing: ${p} (set FOXGATE_DATA_DIR to the folder holding dailydialog/, tinyshakespeare/, gutenberg/)`);
  }
  return p;
}
