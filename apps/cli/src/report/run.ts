/**
 * Reads a training run folder (config.json, metrics.jsonl, optional eval.json) for the report.
 * A folder that is not a run (missing, no metrics.jsonl, unreadable JSON) is a one-line
 * `UsageError`; a missing or malformed optional piece becomes a note and its plot is skipped.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../errors.js';

export interface TrainRecord {
  step: number;
  tokens?: number;
  loss: number;
  lr?: number;
  gradNorm?: number;
  tokensPerSecond?: number;
  seconds?: number;
}

export interface EvalRecord {
  step: number;
  tokens?: number;
  loss: number;
}

export interface Bucket {
  start: number;
  end: number;
  loss: number;
}

export interface Extrapolation {
  factor: number;
  context?: number;
  loss?: number;
  perPosition?: Bucket[];
}

/** eval.json, each field checked: a malformed field is dropped with a note. */
export interface EvalSummary {
  context?: number;
  loss?: number;
  perPosition?: Bucket[];
  extrapolation?: Extrapolation[];
  accuracy?: { name: string; value: number; chance?: number };
  perplexity?: number;
  meanLogF?: number[][];
  prunedFraction?: number[];
  sample?: { prompt?: string; text?: string };
}

export interface RunData {
  dir: string;
  config?: Record<string, unknown>;
  train: TrainRecord[];
  evals: EvalRecord[];
  eval?: EvalSummary;
  /** What was missing or skipped while reading (one line each). */
  notes: string[];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const optNum = (v: unknown): number | undefined => (num(v) ? v : undefined);

function readJson(path: string, name: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError(`report: cannot read ${name}: ${(e as Error).message.split('\n')[0]}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UsageError(`report: ${name} is not valid JSON (${(e as Error).message.split('\n')[0]})`);
  }
}

function buckets(v: unknown): Bucket[] | undefined {
  if (!Array.isArray(v) || v.length === 0) return undefined;
  const out: Bucket[] = [];
  for (const b of v) {
    if (!isObj(b) || !num(b.start) || !num(b.end) || !(num(b.loss) || b.loss === null)) return undefined;
    // a bucket without counted targets (null loss: e.g. padding of a synthetic task) has no point
    if (num(b.loss)) out.push({ start: b.start, end: b.end, loss: b.loss });
  }
  return out.length ? out : undefined;
}

function matrix(v: unknown): number[][] | undefined {
  if (!Array.isArray(v) || v.length === 0) return undefined;
  if (!v.every((r) => Array.isArray(r) && r.length > 0 && r.every(num))) return undefined;
  return v as number[][];
}

/** Checks each field of eval.json; drops (with a note) the ones of the wrong shape. */
export function readEvalSummary(j: unknown, notes: string[]): EvalSummary | undefined {
  if (!isObj(j)) {
    notes.push('eval.json is not a JSON object: skipped');
    return undefined;
  }
  const e: EvalSummary = { context: optNum(j.context), loss: optNum(j.loss), perplexity: optNum(j.perplexity) };
  const bad = (field: string) => notes.push(`eval.json: ${field} has the wrong shape: skipped`);
  if (j.perPosition !== undefined) (e.perPosition = buckets(j.perPosition)) ?? bad('perPosition (a list of {start, end, loss})');
  if (j.extrapolation !== undefined) {
    if (Array.isArray(j.extrapolation) && j.extrapolation.every((x) => isObj(x) && num(x.factor)))
      e.extrapolation = (j.extrapolation as Obj[]).map((x) => ({
        factor: x.factor as number,
        context: optNum(x.context),
        loss: optNum(x.loss),
        perPosition: buckets(x.perPosition),
      }));
    else bad('extrapolation (a list of {factor, context, loss, perPosition})');
  }
  if (j.accuracy !== undefined) {
    const a = j.accuracy;
    if (isObj(a) && num(a.value))
      e.accuracy = { name: typeof a.name === 'string' ? a.name : 'accuracy', value: a.value, chance: optNum(a.chance) };
    else bad('accuracy ({name, value, chance})');
  }
  if (j.gates !== undefined)
    (e.meanLogF = isObj(j.gates) ? matrix(j.gates.meanLogF) : undefined) ?? bad('gates.meanLogF ([layer][head] numbers)');
  if (j.acp !== undefined) {
    const p = isObj(j.acp) ? j.acp.prunedFraction : undefined;
    if (Array.isArray(p) && p.length > 0 && p.every(num)) e.prunedFraction = p;
    else bad('acp.prunedFraction (one number per layer)');
  }
  if (isObj(j.sample))
    e.sample = {
      prompt: typeof j.sample.prompt === 'string' ? j.sample.prompt : undefined,
      text: typeof j.sample.text === 'string' ? j.sample.text : undefined,
    };
  return e;
}

/** Parses metrics.jsonl: a bad line is an error, except a truncated last line (a run still writing). */
export function parseMetrics(text: string, name: string, notes: string[]): { train: TrainRecord[]; evals: EvalRecord[] } {
  const train: TrainRecord[] = [];
  const evals: EvalRecord[] = [];
  const lines = text.split('\n');
  let skipped = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    let r: unknown;
    try {
      r = JSON.parse(line);
    } catch (e) {
      const last = lines.slice(i + 1).every((l) => l.trim() === '');
      if (last && !text.endsWith('\n')) {
        notes.push(`${name}: the last line is incomplete (a run still writing?): skipped`);
        continue;
      }
      throw new UsageError(`report: ${name} line ${i + 1} is not valid JSON (${(e as Error).message.split('\n')[0]})`);
    }
    if (!isObj(r) || !num(r.step) || !num(r.loss)) {
      if (isObj(r) && (r.kind === 'train' || r.kind === 'eval')) skipped++;
      continue;
    }
    if (r.kind === 'train')
      train.push({
        step: r.step,
        tokens: optNum(r.tokens),
        loss: r.loss,
        lr: optNum(r.lr),
        gradNorm: optNum(r.gradNorm),
        tokensPerSecond: optNum(r.tokensPerSecond),
        seconds: optNum(r.seconds),
      });
    else if (r.kind === 'eval') evals.push({ step: r.step, tokens: optNum(r.tokens), loss: r.loss });
  }
  if (skipped) notes.push(`${name}: ${skipped} record(s) without a numeric step and loss: skipped`);
  return { train, evals };
}

/** Reads the run folder `dir`. */
export function loadRun(dir: string): RunData {
  if (!existsSync(dir)) throw new UsageError(`report: run folder '${dir}' does not exist`);
  if (!statSync(dir).isDirectory()) throw new UsageError(`report: '${dir}' is not a folder (give the run folder)`);
  const notes: string[] = [];
  const mPath = join(dir, 'metrics.jsonl');
  if (!existsSync(mPath)) throw new UsageError(`report: '${dir}' has no metrics.jsonl (is it a foxgate run folder?)`);
  let text: string;
  try {
    text = readFileSync(mPath, 'utf8');
  } catch (e) {
    throw new UsageError(`report: cannot read ${mPath}: ${(e as Error).message.split('\n')[0]}`);
  }
  const { train, evals } = parseMetrics(text, mPath, notes);
  let config: Record<string, unknown> | undefined;
  const cPath = join(dir, 'config.json');
  if (existsSync(cPath)) {
    const c = readJson(cPath, cPath);
    if (isObj(c)) config = c;
    else throw new UsageError(`report: ${cPath} is not a JSON object`);
  } else notes.push('no config.json');
  let evalSummary: EvalSummary | undefined;
  const ePath = join(dir, 'eval.json');
  if (existsSync(ePath)) evalSummary = readEvalSummary(readJson(ePath, ePath), notes);
  return { dir, config, train, evals, eval: evalSummary, notes };
}
