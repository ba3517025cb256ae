import type { BenchRow } from './types.js';

/** The first line of a thrown error's message (a bench note stays one line). */
export function firstLine(e: unknown): string {
  return String((e as Error).message).split('\n')[0];
}

/** A row whose case failed its check or threw: value NaN, `failed: true`, `FAILED: why` as the note. */
export function failedRow(bench: string, kase: string, impl: string, why: string, unit = 'tok/s'): BenchRow {
  return { bench, case: kase, impl, value: Number.NaN, unit, note: `FAILED: ${why}`, failed: true };
}
