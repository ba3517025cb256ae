/** `--checkpoint DIR` of `foxgate eval` and `foxgate generate`: a run folder or a bare checkpoint folder. */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { FoxgateError } from '@foxgate/tensor';
import { createTask, createTokenizer, IGNORE_INDEX, parseDataSpec, type RunConfig, type RunData, runConfig, runData } from '@foxgate/train';
import { UsageError } from '../errors.js';

export interface CheckpointFolder {
  /** The checkpoint folder itself (`DIR/checkpoint` for a run folder). */
  checkpointDir: string;
  /** The run's settings (config.json's `run`), or null for a checkpoint without its run folder. */
  run: RunConfig | null;
}

function readJson(cmd: string, file: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UsageError(`${cmd}: ${file}: not valid JSON (${(e as Error).message.split('\n')[0]})`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new UsageError(`${cmd}: ${file}: must hold a JSON object`);
  return v as Record<string, unknown>;
}

/** The run settings of a run folder's config.json (`{ run, model, device, data }`), or null when it holds none. */
function runOf(cmd: string, dir: string): RunConfig | null {
  const file = join(dir, 'config.json');
  if (!existsSync(file)) return null;
  const j = readJson(cmd, file);
  if (j.run === undefined) return null;
  try {
    return runConfig(j.run as Record<string, unknown>, file);
  } catch (e) {
    if (e instanceof FoxgateError || (e as Error).name === 'FoxgateError') throw new UsageError(`${cmd}: ${(e as Error).message}`);
    throw e;
  }
}

/**
 * Finds the checkpoint and the run settings of `--checkpoint DIR`: a run folder of `foxgate
 * train` (config.json with `run`, and `checkpoint/`), its `checkpoint/` folder (the run's
 * settings come from the folder above), or any checkpoint folder (config.json + safetensors;
 * no run settings). Anything else is a one-line `UsageError`.
 */
export function findCheckpoint(cmd: string, dir: string): CheckpointFolder {
  const flagged = `${cmd}: --checkpoint ${dir}`;
  if (!existsSync(dir)) throw new UsageError(`${flagged}: no such folder`);
  if (!statSync(dir).isDirectory()) throw new UsageError(`${flagged}: not a folder (give a run folder or a checkpoint folder)`);
  const run = runOf(cmd, dir);
  if (run) {
    const checkpointDir = join(dir, 'checkpoint');
    if (!existsSync(join(checkpointDir, 'config.json')))
      throw new UsageError(`${flagged}: a run folder without a checkpoint (expected ${checkpointDir}/config.json)`);
    return { checkpointDir, run };
  }
  if (!existsSync(join(dir, 'config.json')))
    throw new UsageError(`${flagged}: no config.json (not a run folder of foxgate train nor a checkpoint folder)`);
  const parentRun = basename(dir) === 'checkpoint' ? runOf(cmd, dirname(dir)) : null;
  return { checkpointDir: dir, run: parentRun };
}

/** How text becomes token ids for a run: a tokenizer (text, dialogs) or a synthetic task's token names. */
export interface PromptCodec {
  /** One line: what the tokens are. */
  describe: string;
  vocabSize: number;
  /** Token ids of a prompt (with the BOS the training rows start with); a one-line `UsageError` on an unknown token name. */
  encode(prompt: string): number[];
  decode(ids: ArrayLike<number>): string;
  /** Tokens that end a sequence (EOS of a tokenizer). */
  stop: number[];
}

/** `k0 k1 … k7` → `k0…k7`: the names of a task's vocabulary, runs of one prefix shortened. */
export function compactNames(names: readonly string[]): string {
  const out: string[] = [];
  for (let i = 0; i < names.length; ) {
    const m = /^([a-z]+)(\d+)$/.exec(names[i]);
    let j = i;
    if (m) {
      while (j + 1 < names.length && names[j + 1] === `${m[1]}${Number(m[2]) + (j + 1 - i)}`) j++;
    }
    out.push(j - i >= 2 ? `${names[i]}…${names[j]}` : names.slice(i, j + 1).join(', '));
    i = j + 1;
  }
  return out.join(', ');
}

/**
 * The prompt codec of a run: a synthetic task's token names (space-separated, as the task's
 * decode prints them), else the run's tokenizer (`byte` or `gpt2`, BOS first). Without run
 * settings, the `tokenizer` given.
 */
export function promptCodec(cmd: string, run: RunConfig | null, tokenizer: 'byte' | 'gpt2'): PromptCodec {
  const [kind, rest] = run ? parseDataSpec(run.data) : ['text', ''];
  if (run && kind === 'synthetic') {
    const task = createTask(rest as never, { ...run.task, T: run.context, B: 1 });
    const names = Array.from({ length: task.vocabSize }, (_, i) => task.decode([i]));
    const ids = new Map(names.map((n, i) => [n, i]));
    return {
      describe: `${task.name} token names`,
      vocabSize: task.vocabSize,
      encode: (prompt) =>
        prompt
          .trim()
          .split(/\s+/)
          .map((w) => {
            const id = ids.get(w);
            if (id === undefined)
              throw new UsageError(`${cmd}: --prompt: unknown token '${w}' (this ${task.name} run's tokens: ${compactNames(names)})`);
            return id;
          }),
      decode: (t) => task.decode(t),
      stop: [],
    };
  }
  const tok = createTokenizer({ kind: run?.tokenizer ?? tokenizer });
  return {
    describe: `${tok.kind} tokens`,
    vocabSize: tok.vocabSize,
    encode: (prompt) => [tok.bos, ...tok.encode(prompt)],
    decode: (t) => tok.decode(t),
    stop: [tok.eos],
  };
}

/** Whether `data` has a validation row of `T` tokens. */
export function hasValidationRows(data: RunData, T: number, rows: number): boolean {
  const it = data.evaluation(T, rows);
  return it !== null && !it[Symbol.iterator]().next().done;
}

/** Whether the first validation row of `T` tokens is full (text packs documents; a shorter set pads its only row). */
function fillsOneRow(data: RunData, T: number): boolean {
  const it = data.evaluation(T, 1);
  const first = it?.[Symbol.iterator]().next();
  if (!first || first.done) return false;
  return first.value.targets[T - 1] !== IGNORE_INDEX;
}

/**
 * Before a new training run starts: its settings are valid and, for text, the validation data
 * fills one row of the training context (a longer context than the data allows is refused here,
 * in one line, rather than after training).
 */
export function checkNewRun(overrides: Record<string, unknown>): void {
  const cfg = runConfig(overrides);
  const data = runData(cfg);
  const T = cfg.context;
  if (data.kind === 'lm' ? !fillsOneRow(data, T) : !hasValidationRows(data, T, cfg.evalRows))
    throw new UsageError(
      `train: --context ${T} is longer than the data allows: the validation data (${data.describe}) holds fewer than ${T + 1} tokens`,
    );
}
