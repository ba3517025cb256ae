import { vi } from 'vitest';
import { main } from '../../src/main.js';

export interface CliResult {
  code: number;
  /** console.log lines (stdout). */
  out: string[];
  /** console.error lines (one per call). */
  err: string[];
}

/**
 * Captures console.log and console.error lines until `vi.restoreAllMocks()` (call it in
 * `afterEach`); for tests that call `main` themselves.
 */
export function captureConsole(): { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.map(String).join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.map(String).join(' ')));
  return { out, err };
}

/** Runs `main(argv)` in this process with console output captured (progress on stderr is swallowed). */
export async function runCli(argv: string[]): Promise<CliResult> {
  const out: string[] = [];
  const err: string[] = [];
  const spies = [
    vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.map(String).join(' '))),
    vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.map(String).join(' '))),
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true),
  ];
  try {
    return { code: await main(argv), out, err };
  } finally {
    for (const s of spies) s.mockRestore();
  }
}

/** The single JSON object a `--json` command printed. */
export function jsonOf(r: CliResult): Record<string, any> {
  if (r.out.length !== 1) throw new Error(`expected one stdout line, got ${r.out.length}: ${r.out.join('\n')}\n${r.err.join('\n')}`);
  return JSON.parse(r.out[0]);
}
