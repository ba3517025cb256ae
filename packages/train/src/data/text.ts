/**
 * Plain-text corpora: a file or a folder of files, each file a document, read from disk only
 * when a loader reaches it. A corpus of a single file is cut at line boundaries into segments
 * (~64 KiB by default) that count as documents, so a validation split can hold some out.
 */
import { closeSync, existsSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fail } from '@foxgate/tensor';
import { checkKeys, checkPositiveInt } from './batch.js';

/** A document of a text corpus: bytes [start, end) of a file. */
export interface TextDocument {
  /** File path relative to the corpus root (with `#k` for the k-th segment of a segmented file). */
  readonly name: string;
  readonly path: string;
  readonly start: number;
  readonly end: number;
}

export interface TextCorpus {
  readonly root: string;
  readonly documents: readonly TextDocument[];
  /** True when the corpus was a single file cut into segments. */
  readonly segmented: boolean;
}

export interface TextCorpusOptions {
  /** Target segment size in bytes when the corpus is a single file (default 65,536). */
  segmentBytes?: number;
}

export const DEFAULT_SEGMENT_BYTES = 65536;

const utf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

function listFiles(root: string, dir: string, out: string[]): void {
  const names = readdirSync(dir).sort();
  for (const n of names) {
    if (n.startsWith('.')) continue;
    const p = join(dir, n);
    const st = statSync(p);
    if (st.isDirectory()) listFiles(root, p, out);
    else if (st.isFile()) out.push(p);
  }
}

/** Byte offsets after the first '\n' at or after each `segmentBytes` step (cuts of a segmented file). */
function lineCuts(path: string, size: number, segmentBytes: number): number[] {
  const cuts = [0];
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(65536);
    let target = segmentBytes;
    while (target < size) {
      let pos = target - 1;
      let found = -1;
      while (found < 0 && pos < size) {
        const n = readSync(fd, buf, 0, buf.length, pos);
        const i = buf.subarray(0, n).indexOf(10);
        if (i >= 0) found = pos + i + 1;
        else pos += n;
      }
      if (found < 0 || found >= size) break;
      cuts.push(found);
      target = found + segmentBytes;
    }
  } finally {
    closeSync(fd);
  }
  cuts.push(size);
  return cuts;
}

/**
 * The documents of a text file or folder (files found recursively, hidden ones skipped, sorted by
 * path; empty files skipped). Only sizes are read here, and for a single file its line breaks.
 */
export function openTextCorpus(path: string, opts: TextCorpusOptions = {}): TextCorpus {
  const op = 'openTextCorpus';
  checkKeys(op, opts, ['segmentBytes']);
  const segmentBytes = checkPositiveInt(op, 'segmentBytes', opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES);
  if (typeof path !== 'string' || path === '') fail(op, 'path must be a file or folder name');
  if (!existsSync(path)) fail(op, `${path} does not exist`);
  const st = statSync(path);
  const files: string[] = [];
  if (st.isDirectory()) listFiles(path, path, files);
  else files.push(path);
  const docs: TextDocument[] = [];
  for (const f of files) {
    const size = statSync(f).size;
    if (size > 0) docs.push({ name: st.isDirectory() ? relative(path, f) : f, path: f, start: 0, end: size });
  }
  if (docs.length === 0) fail(op, `${path} holds no text (no non-empty files)`);
  if (docs.length > 1) return { root: path, documents: docs, segmented: false };
  const d = docs[0];
  const cuts = lineCuts(d.path, d.end, segmentBytes);
  const segs: TextDocument[] = [];
  for (let k = 0; k + 1 < cuts.length; k++) segs.push({ name: `${d.name}#${k}`, path: d.path, start: cuts[k], end: cuts[k + 1] });
  return { root: path, documents: segs, segmented: segs.length > 1 };
}

/** The text of a document (a string is its own text). */
export function readDocument(doc: TextDocument | string): string {
  if (typeof doc === 'string') return doc;
  const n = doc.end - doc.start;
  const buf = Buffer.alloc(n);
  const fd = openSync(doc.path, 'r');
  try {
    let got = 0;
    while (got < n) {
      const r = readSync(fd, buf, got, n - got, doc.start + got);
      if (r === 0) fail('readDocument', `${doc.path} is shorter than expected (changed since the corpus was opened?)`);
      got += r;
    }
  } finally {
    closeSync(fd);
  }
  return utf8.decode(buf);
}
