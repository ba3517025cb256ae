import { fail } from '@foxgate/tensor';

/** Default number of speaker tokens. */
export const DEFAULT_SPEAKERS = 2;

/** Checks the `speakers` field of a spec: an integer in [2, 64]. */
export function checkSpeakers(op: string, speakers: unknown): number {
  if (speakers === undefined) return DEFAULT_SPEAKERS;
  if (typeof speakers !== 'number' || !Number.isInteger(speakers) || speakers < 2 || speakers > 64) {
    fail(op, `speakers must be an integer in [2, 64], got ${JSON.stringify(speakers)}`);
  }
  return speakers;
}

/** Name of speaker `i`: A..Z, then S26, S27, … */
export function speakerName(i: number): string {
  return i < 26 ? String.fromCharCode(65 + i) : `S${i}`;
}

/**
 * The special tokens placed at `base, base+1, …`: BOS, EOS, PAD, then the speakers. Returns the
 * ids and the text each renders as.
 */
export function specialTokens(base: number, speakers: number) {
  const names = ['<bos>', '<eos>', '<pad>'];
  for (let i = 0; i < speakers; i++) names.push(`<${speakerName(i)}>`);
  return {
    bos: base,
    eos: base + 1,
    pad: base + 2,
    speakers: Array.from({ length: speakers }, (_, i) => base + 3 + i),
    names,
    vocabSize: base + names.length,
  };
}

/** Checks that a decoded id is an integer in [0, vocabSize). */
export function checkId(op: string, id: number, at: number, vocabSize: number): void {
  if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
    fail(op, `ids[${at}] = ${id} is not a token id (vocabulary of ${vocabSize})`);
  }
}
