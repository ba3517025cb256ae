/**
 * Dialog sources: JSONL (`{"turns": [...], "speakers"?: [...]}` per line) and DailyDialog (one
 * dialog per line, each utterance ending with `__eou__`; its train/validation/test files are
 * its splits).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fail } from '@foxgate/tensor';

export interface Dialog {
  /** The dialog's id: the JSONL `id` field, else its 0-based index in the file. */
  id: string | number;
  turns: string[];
  /**
   * Speaker index of each turn (0 → `<A>`, 1 → `<B>`, …). Absent: speakers alternate A, B, A, …
   * JSONL string labels are numbered by first appearance within the dialog.
   */
  speakers?: number[];
}

function readText(op: string, file: string): string {
  if (typeof file !== 'string' || file === '') fail(op, 'file must be a path');
  if (!existsSync(file)) fail(op, `${file} does not exist`);
  if (!statSync(file).isFile()) fail(op, `${file} is not a file`);
  return readFileSync(file, 'utf8');
}

/** Dialogs of JSONL text (`file` names it in errors); blank lines are skipped. */
export function parseJsonlDialogs(text: string, file = '<jsonl>'): Dialog[] {
  const op = 'readJsonlDialogs';
  const out: Dialog[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '') continue;
    const at = `${file}:${i + 1}`;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      fail(op, `${at}: not valid JSON (${(e as Error).message})`);
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) fail(op, `${at}: expected an object like {"turns": ["…", "…"]}`);
    const o = v as Record<string, unknown>;
    if (!Array.isArray(o.turns) || !o.turns.every((t) => typeof t === 'string')) fail(op, `${at}: "turns" must be an array of strings`);
    const turns = o.turns as string[];
    const d: Dialog = { id: out.length, turns };
    if (o.id !== undefined) {
      if (typeof o.id !== 'string' && typeof o.id !== 'number') fail(op, `${at}: "id" must be a string or a number`);
      d.id = o.id;
    }
    if (o.speakers !== undefined) {
      const sp = o.speakers;
      if (!Array.isArray(sp) || sp.length !== turns.length) {
        fail(op, `${at}: "speakers" must be an array with one entry per turn (${turns.length})`);
      }
      if (sp.every((s) => typeof s === 'number' && Number.isInteger(s) && s >= 0)) {
        d.speakers = sp as number[];
      } else if (sp.every((s) => typeof s === 'string')) {
        const seen = new Map<string, number>();
        d.speakers = (sp as string[]).map((s) => {
          if (!seen.has(s)) seen.set(s, seen.size);
          return seen.get(s)!;
        });
      } else {
        fail(op, `${at}: "speakers" must be all strings (labels) or all integers ≥ 0 (speaker indices)`);
      }
    }
    out.push(d);
  }
  if (out.length === 0) fail(op, `${file} holds no dialogs`);
  return out;
}

/** Reads a JSONL dialog file. Malformed lines are reported as `file:line`. */
export function readJsonlDialogs(file: string): Dialog[] {
  return parseJsonlDialogs(readText('readJsonlDialogs', file), file);
}

/** Dialogs of DailyDialog text: one per non-blank line, utterances split at `__eou__` and trimmed. */
export function parseDailyDialog(text: string, file = '<dailydialog>'): Dialog[] {
  const op = 'readDailyDialog';
  const out: Dialog[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '') continue;
    const parts = line.split('__eou__');
    if (parts.length < 2) fail(op, `${file}:${i + 1}: no __eou__ (each utterance must end with __eou__; is this a DailyDialog file?)`);
    const tail = parts.pop()!;
    if (tail.trim() !== '') fail(op, `${file}:${i + 1}: text after the last __eou__: ${JSON.stringify(tail.trim().slice(0, 40))}`);
    out.push({ id: out.length, turns: parts.map((p) => p.trim()) });
  }
  if (out.length === 0) fail(op, `${file} holds no dialogs`);
  return out;
}

/** Reads a DailyDialog file (e.g. dialogues_train.txt). */
export function readDailyDialog(file: string): Dialog[] {
  return parseDailyDialog(readText('readDailyDialog', file), file);
}

export type DailyDialogSplit = 'train' | 'validation' | 'test';

/** One split of the DailyDialog folder: `dir/dialogues_<split>.txt`. */
export function loadDailyDialog(dir: string, split: DailyDialogSplit): Dialog[] {
  const op = 'loadDailyDialog';
  if (split !== 'train' && split !== 'validation' && split !== 'test') {
    fail(op, `split must be "train", "validation" or "test", got ${JSON.stringify(split)}`);
  }
  if (typeof dir !== 'string' || !existsSync(dir) || !statSync(dir).isDirectory()) fail(op, `${dir} is not a folder`);
  const file = join(dir, `dialogues_${split}.txt`);
  if (!existsSync(file)) fail(op, `${file} does not exist (expected DailyDialog's dialogues_train/validation/test.txt)`);
  return readDailyDialog(file);
}
