/** `foxgate report STUDY_DIR` and the end of `foxgate dialog-study`: the study's plots and report page from its results.json. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type StudyResults, studyMarkdown } from '@foxgate/train';
import { UsageError } from '../errors.js';
import { writeFileAtomic } from '../files.js';
import { renderStudyReport } from './study-html.js';
import { standaloneSvg, studyPlots } from './study-plots.js';

/** True when `dir` holds a dialog study's results.json (and is not a train run). */
export function isStudyFolder(dir: string): boolean {
  const f = join(dir, 'results.json');
  if (!existsSync(f) || existsSync(join(dir, 'metrics.jsonl'))) return false;
  try {
    return (JSON.parse(readFileSync(f, 'utf8')) as { kind?: unknown }).kind === 'dialog-study';
  } catch {
    return false;
  }
}

/** Writes the study's plots (DIR/*.svg) and DIR/report.html; returns the plot files. */
export function writeStudyFiles(dir: string, r: StudyResults): string[] {
  const plots = studyPlots(r);
  for (const p of plots) writeFileAtomic(join(dir, p.file), standaloneSvg(p.svg));
  writeFileAtomic(join(dir, 'report.html'), renderStudyReport(r, studyMarkdown(r), plots));
  return plots.map((p) => p.file);
}

/** Reads DIR/results.json and writes the report files; the report's path and the plot files. */
export function reportStudy(dir: string): { report: string; plots: string[] } {
  let r: StudyResults;
  try {
    r = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as StudyResults;
  } catch (e) {
    throw new UsageError(`report: ${join(dir, 'results.json')}: ${(e as Error).message.split('\n')[0]}`);
  }
  return { report: join(dir, 'report.html'), plots: writeStudyFiles(dir, r) };
}
