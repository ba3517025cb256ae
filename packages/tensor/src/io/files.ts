/**
 * safetensors files on disk (Node only). `node:fs/promises` is imported dynamically, by a name in
 * a variable, so that bundlers (esbuild, Vite) neither try to resolve it for the browser nor put
 * a Node built-in into browser bundles of @foxgate/tensor (examples/browser tests that).
 */
import { fail } from '../errors.js';
import { parseSafetensors, type SafetensorsContents, type SafetensorsEntry, serializeSafetensors } from './safetensors.js';

type Fs = typeof import('node:fs/promises');

async function fs(op: string): Promise<Fs> {
  try {
    const name = 'node:fs/promises';
    return (await import(/* @vite-ignore */ name)) as Fs;
  } catch {
    return fail(op, 'file access needs Node.js (node:fs/promises); in a browser pass the bytes instead');
  }
}

function reason(err: unknown): string {
  const e = err as { code?: string; message?: string };
  return e?.code ?? e?.message ?? String(err);
}

/** Reads and parses a safetensors file; errors name the path. */
export async function readSafetensorsFile(path: string): Promise<SafetensorsContents> {
  const { readFile } = await fs('safetensors');
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    fail('safetensors', `${path}: cannot read file (${reason(err)})`);
  }
  return parseSafetensors(bytes, path);
}

/**
 * Writes a safetensors file atomically: the bytes go to `path.tmp-<pid>` first, which is then
 * renamed over `path`, so a crash never leaves a half-written file under `path`.
 */
export async function writeSafetensorsFile(
  path: string,
  entries: Record<string, SafetensorsEntry>,
  metadata?: Record<string, string>,
): Promise<void> {
  const bytes = serializeSafetensors(entries, metadata);
  const { writeFile, rename, rm } = await fs('safetensors');
  const pid = (globalThis as { process?: { pid?: number } }).process?.pid ?? 0;
  const tmp = `${path}.tmp-${pid}`;
  try {
    await writeFile(tmp, bytes);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    fail('safetensors', `${path}: cannot write file (${reason(err)})`);
  }
}
