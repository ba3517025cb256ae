/** A subset of DailyDialog written in its own format, so a study on it is a plain `dailydialog:DIR` run. */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type DailyDialogSplit, type Dialog, loadDailyDialog } from '../data/dialogs.js';

/** One DailyDialog line: each utterance followed by `__eou__`. */
export function formatDailyDialog(dialogs: readonly Dialog[]): string {
  return dialogs.map((d) => `${d.turns.map((t) => `${t} __eou__`).join(' ')}\n`).join('');
}

/**
 * Writes the first `max.train` / `max.validation` / `max.test` dialogs of each split of `src`
 * into `dest` (null: the whole split). An existing identical file is left as it is.
 */
export function writeDailyDialogSubset(
  src: string,
  dest: string,
  max: Record<DailyDialogSplit, number | null>,
): Record<DailyDialogSplit, number> {
  mkdirSync(dest, { recursive: true });
  const counts = {} as Record<DailyDialogSplit, number>;
  for (const split of ['train', 'validation', 'test'] as const) {
    const all = loadDailyDialog(src, split);
    const keep = max[split] === null ? all : all.slice(0, max[split] as number);
    const text = formatDailyDialog(keep);
    const file = join(dest, `dialogues_${split}.txt`);
    if (!existsSync(file) || readFileSync(file, 'utf8') !== text) {
      writeFileSync(`${file}.tmp`, text);
      renameSync(`${file}.tmp`, file);
    }
    counts[split] = keep.length;
  }
  return counts;
}
