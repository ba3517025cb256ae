/** Fingerprints that tie a saved loader position to the data it was taken on. */

import { fmix32 } from './random.js';
import type { TextDocument } from './text.js';

/** A u32 hash of a string's UTF-16 code units. */
export function hashString(s: string, h = 0x811c9dc5): number {
  for (let i = 0; i < s.length; i++) h = fmix32((h ^ s.charCodeAt(i)) + 0x9e3779b9);
  return h;
}

/** Hash of a document list: names and byte ranges of file documents, the text of string ones. */
export function documentsFingerprint(docs: readonly (string | TextDocument)[]): number {
  let h = fmix32(docs.length + 1);
  for (const d of docs) {
    if (typeof d === 'string') h = hashString(d, fmix32(h ^ 1));
    else h = fmix32(hashString(d.name, fmix32(h ^ 2)) ^ fmix32(d.start) ^ fmix32(d.end + 7));
  }
  return h;
}
