import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../src/errors.js';
import { checkWritableFile, writeFileAtomic } from '../src/files.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'fg-files-'));

describe('checkWritableFile', () => {
  it('accepts a new file in an existing folder, or an existing file, and creates nothing', () => {
    const d = tmp();
    expect(() => checkWritableFile(join(d, 'new.json'))).not.toThrow();
    writeFileSync(join(d, 'old.json'), '{}');
    expect(() => checkWritableFile(join(d, 'old.json'))).not.toThrow();
    expect(readdirSync(d)).toEqual(['old.json']);
  });
  it('refuses a missing folder, a folder, a file as a parent', () => {
    const d = tmp();
    writeFileSync(join(d, 'f'), '');
    expect(() => checkWritableFile(join(d, 'a', 'b.json'), '--json')).toThrow(
      new UsageError(`--json '${join(d, 'a', 'b.json')}' cannot be written: folder '${join(d, 'a')}' does not exist`),
    );
    expect(() => checkWritableFile(d, '--json')).toThrow(new UsageError(`--json '${d}' is a folder, not a file`));
    expect(() => checkWritableFile(join(d, 'f', 'x', 'y'), '--json')).toThrow(/cannot be written: a parent of it is a file/);
  });
  it.skipIf(process.getuid?.() === 0)('refuses a read-only folder (not as root: root may write anywhere)', () => {
    const d = tmp();
    const ro = join(d, 'ro');
    mkdirSync(ro);
    chmodSync(ro, 0o555);
    expect(() => checkWritableFile(join(ro, 'x.json'), '--json')).toThrow(/folder '.*ro' is not writable/);
  });
});

describe('writeFileAtomic', () => {
  it('replaces the file whole and leaves no temp file', () => {
    const d = tmp();
    const f = join(d, 'report.html');
    writeFileSync(f, 'old');
    writeFileAtomic(f, 'new content');
    expect(readFileSync(f, 'utf8')).toBe('new content');
    expect(readdirSync(d)).toEqual(['report.html']);
  });
  it('on failure leaves the old file and no temp file', () => {
    const d = tmp();
    mkdirSync(join(d, 'target'));
    writeFileSync(join(d, 'target', 'inside'), 'x');
    // renaming a file over a non-empty folder fails
    expect(() => writeFileAtomic(join(d, 'target'), 'data')).toThrow();
    expect(readdirSync(d)).toEqual(['target']);
  });
});
