import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseSafetensors } from '@foxgate/tensor';
import { repoRoot } from '@foxgate/testing';

/** One tensor of a fixture file, widened to float64. */
export interface GoldenTensor {
  shape: number[];
  data: Float64Array;
}

export interface GoldenCase {
  name: string;
  kind: string;
  meta: Record<string, unknown>;
  tensors: Map<string, GoldenTensor>;
}

/** The fixture file the golden tests run: env FOXGATE_GOLDEN_FILE, else the public one. */
export function goldenFile(): string {
  return process.env.FOXGATE_GOLDEN_FILE ?? resolve(repoRoot(), '../shared/fixtures/golden_public.safetensors');
}

/**
 * Reads a fixture file with `parseSafetensors` and groups its `CASE/NAME` tensors by case, with
 * each case's settings from the manifest in `__metadata__.manifest` (or the `.json` beside it).
 */
export function loadGolden(file: string): GoldenCase[] {
  if (!existsSync(file))
    throw new Error(
      `golden: fixture file ${file} not found (the shared fixtures sit beside the project as ../shared; or set FOXGATE_GOLDEN_FILE)`,
    );
  const bytes = readFileSync(file);
  const { tensors, metadata } = parseSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), file);
  let manifest: Record<string, Record<string, unknown>>;
  if (metadata.manifest) manifest = JSON.parse(metadata.manifest);
  else {
    const side = file.replace(/\.safetensors$/, '.json');
    if (!existsSync(side)) throw new Error(`golden: ${file} has no __metadata__.manifest and no ${side}`);
    manifest = JSON.parse(readFileSync(side, 'utf8'));
  }
  const cases = new Map<string, GoldenCase>();
  for (const [name, meta] of Object.entries(manifest)) {
    cases.set(name, { name, kind: String(meta.kind), meta, tensors: new Map() });
  }
  for (const [key, t] of tensors) {
    const slash = key.indexOf('/');
    const c = cases.get(key.slice(0, slash));
    if (c) c.tensors.set(key.slice(slash + 1), { shape: [...t.shape], data: Float64Array.from(t.data as ArrayLike<number>) });
  }
  return [...cases.values()];
}

/** First element where `|a − b| > atol + rtol·|b|`, described; null when all are close. */
export function mismatch(actual: ArrayLike<number>, expected: ArrayLike<number>, atol = 1e-4, rtol = 1e-3): string | null {
  if (actual.length !== expected.length) return `length ${actual.length} != ${expected.length}`;
  let worst = -1;
  let worstExcess = 0;
  let count = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const e = expected[i];
    const excess = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (!(excess <= 0)) {
      count++;
      if (worst < 0 || !(excess <= worstExcess)) {
        worst = i;
        worstExcess = excess;
      }
    }
  }
  if (worst < 0) return null;
  return `${count}/${actual.length} elements off; worst at ${worst}: got ${actual[worst]}, expected ${expected[worst]}`;
}
