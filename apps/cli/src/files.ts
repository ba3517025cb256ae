/** File helpers of the CLI: output paths checked before the work starts, atomic writes. */
import { accessSync, constants, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { UsageError } from './errors.js';

/**
 * Checks that `path` can be written later, before any work starts, without creating anything:
 * its folder exists, is a folder and is writable (the file is written as a temp file there and
 * renamed), and the path itself is not a folder nor a read-only file. Throws a one-line
 * `UsageError` naming `what` (e.g. `--json`) and the path.
 */
export function checkWritableFile(path: string, what = 'output file'): void {
  const full = resolve(path);
  const dir = dirname(full);
  let st: ReturnType<typeof statSync> | undefined;
  try {
    st = statSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(
      `${what} '${path}' cannot be written: ${code === 'ENOTDIR' ? 'a parent of it is a file' : `folder '${dir}' does not exist`}`,
    );
  }
  if (!st.isDirectory()) throw new UsageError(`${what} '${path}' cannot be written: '${dir}' is not a folder`);
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw new UsageError(`${what} '${path}' cannot be written: folder '${dir}' is not writable`);
  }
  let target: ReturnType<typeof statSync> | undefined;
  try {
    target = statSync(full);
  } catch {
    return; // does not exist yet: fine
  }
  if (target.isDirectory()) throw new UsageError(`${what} '${path}' is a folder, not a file`);
  try {
    accessSync(full, constants.W_OK);
  } catch {
    throw new UsageError(`${what} '${path}' cannot be written: the file is read-only`);
  }
}

/**
 * Writes `data` to `path` atomically: into a temp file beside it, then renamed over it, so that
 * a reader (or a crash) never sees a half-written file. The temp file is removed on failure.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
