import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The hand-made run folder (config.json, metrics.jsonl with a truncated last line, eval.json). */
export const FIXTURE = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'run');

/** A fresh copy of the fixture run folder in a temp folder (the report is written into it). */
export function fixtureCopy(): string {
  const d = join(mkdtempSync(join(tmpdir(), 'fg-report-')), 'run');
  cpSync(FIXTURE, d, { recursive: true });
  return d;
}
