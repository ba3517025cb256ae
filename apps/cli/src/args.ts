/**
 * A small declarative flag parser for the `foxgate` commands. A command declares its flags
 * (typed: string, int, float, enum, lists, booleans, files), its positional arguments and its
 * help; `parseCommand` turns argv into typed values or throws a one-line `UsageError` naming the
 * command, the flag and what is wrong. `--help` text is generated from the same declaration.
 */
import { UsageError } from './errors.js';
import { checkWritableFile } from './files.js';

/** One declared flag: how to read its value, its default and its help line. */
export interface Flag<T, Present extends boolean = boolean> {
  /** Shown in `--help` after the flag (`N`, `X`, `cpu|webgpu`); undefined: takes no value. */
  readonly valueName: string | undefined;
  readonly help: string;
  /** What a valid value is, for the help line (`positive integer ≤ 65536`). */
  readonly accepts: string;
  readonly short?: string;
  readonly required: boolean;
  readonly default: T | undefined;
  /** Parses the raw text; throws a `UsageError` whose message starts with `--name`. */
  parse(raw: string, name: string): T;
  /** Shown as the default in `--help` when `default` is undefined. */
  readonly defaultHint?: string;
  /** Checks run once every flag has parsed (e.g. a writable file); throws a `UsageError`. */
  check?(value: T, name: string): void;
  /** Phantom: whether the value is always present (required or defaulted). */
  readonly __present?: Present;
}

export type AnyFlag = Flag<any, boolean>;
export type Flags = Record<string, AnyFlag>;

type Camel<S extends string> = S extends `${infer H}-${infer R}` ? `${H}${Capitalize<Camel<R>>}` : S;
type ValueOf<F> = F extends Flag<infer T, true> ? T : F extends Flag<infer T, boolean> ? T | undefined : never;
/** The parsed values: one key per flag, `--head-dim` as `headDim`. */
export type FlagValues<F extends Flags> = { -readonly [K in keyof F & string as Camel<K>]: ValueOf<F[K]> };

interface Common<T> {
  help: string;
  short?: string;
  required?: boolean;
  default?: T;
  /** Overrides the value name shown in `--help`. */
  valueName?: string;
  /** The default as `--help` shows it, when the value stays undefined (the work picks it later). */
  defaultHint?: string;
}
type Present<O> = O extends { required: true } ? true : O extends { default: NonNullable<unknown> } ? true : false;

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

function readNumber(raw: string): number | undefined {
  const s = raw.trim();
  return NUMBER.test(s) ? Number(s) : undefined;
}

function make<T, O extends Common<T>>(
  o: O,
  rest: Omit<Flag<T>, 'help' | 'short' | 'required' | 'default' | '__present'>,
): Flag<T, Present<O>> {
  return {
    help: o.help,
    short: o.short,
    required: o.required ?? false,
    default: o.default,
    defaultHint: o.defaultHint,
    ...rest,
    valueName: o.valueName ?? rest.valueName,
  };
}

export interface IntOptions extends Common<number> {
  min?: number;
  /** The largest value accepted (a size the command can allocate); larger is "too large". */
  max?: number;
}

function intAccepts(min: number | undefined, max: number | undefined): string {
  const upTo = max === undefined ? '' : ` ≤ ${max}`;
  if (min === 1) return `positive integer${upTo}`;
  if (min === 0) return `non-negative integer${upTo}`;
  if (min === undefined) return `integer${upTo}`;
  return max === undefined ? `integer ≥ ${min}` : `integer in [${min}, ${max}]`;
}

function parseIntValue(raw: string, name: string, min: number | undefined, max: number | undefined): number {
  const n = readNumber(raw);
  const what = intAccepts(min, max);
  const article = /^[aeiou]/.test(what) ? 'an' : 'a';
  if (n === undefined || !Number.isInteger(n)) throw new UsageError(`--${name} must be ${article} ${what}, got '${raw}'`);
  if (min !== undefined && n < min) throw new UsageError(`--${name} must be ${article} ${what}, got '${raw}'`);
  if (!Number.isSafeInteger(n) || (max !== undefined && n > max))
    throw new UsageError(`--${name} ${raw} is too large (at most ${max ?? Number.MAX_SAFE_INTEGER})`);
  return n;
}

function int<const O extends IntOptions>(o: O): Flag<number, Present<O>> {
  return make<number, O>(o, {
    valueName: 'N',
    accepts: intAccepts(o.min, o.max),
    parse: (raw, name) => parseIntValue(raw, name, o.min, o.max),
  });
}

export interface FloatOptions extends Common<number> {
  min?: number;
  max?: number;
  /** `min` itself is not allowed (e.g. a time > 0). */
  minExclusive?: boolean;
  maxExclusive?: boolean;
}

function floatAccepts(o: FloatOptions): string {
  if (o.min === undefined && o.max === undefined) return 'number';
  const lo = o.min === undefined ? '(-∞' : `${o.minExclusive ? '(' : '['}${o.min}`;
  const hi = o.max === undefined ? '∞)' : `${o.max}${o.maxExclusive ? ')' : ']'}`;
  return `number in ${lo}, ${hi}`;
}

function float<const O extends FloatOptions>(o: O): Flag<number, Present<O>> {
  const accepts = floatAccepts(o);
  return make<number, O>(o, {
    valueName: 'X',
    accepts,
    parse: (raw, name) => {
      const n = readNumber(raw);
      const bad =
        n === undefined ||
        !Number.isFinite(n) ||
        (o.min !== undefined && (o.minExclusive ? n <= o.min : n < o.min)) ||
        (o.max !== undefined && (o.maxExclusive ? n >= o.max : n > o.max));
      if (bad) throw new UsageError(`--${name} must be a ${accepts}, got '${raw}'`);
      return n as number;
    },
  });
}

function str<const O extends Common<string>>(o: O): Flag<string, Present<O>> {
  return make<string, O>(o, {
    valueName: 'TEXT',
    accepts: 'text',
    parse: (raw, name) => {
      if (raw === '') throw new UsageError(`--${name} must not be empty`);
      return raw;
    },
  });
}

export interface FileOptions extends Common<string> {
  /** Checked before the work starts: the folder exists and is writable (see `checkWritableFile`). */
  writable?: boolean;
}

function file<const O extends FileOptions>(o: O): Flag<string, Present<O>> {
  return make<string, O>(o, {
    valueName: 'PATH',
    accepts: o.writable ? 'a file path to write' : 'a path',
    parse: (raw, name) => {
      if (raw === '') throw new UsageError(`--${name} must not be empty`);
      return raw;
    },
    check: o.writable ? (value, name) => checkWritableFile(value, `--${name}`) : undefined,
  });
}

function choice<const V extends string, const O extends Common<V>>(values: readonly V[], o: O): Flag<V, Present<O>> {
  return make<V, O>(o, {
    valueName: values.join('|'),
    accepts: `one of ${values.join(', ')}`,
    parse: (raw, name) => {
      if ((values as readonly string[]).includes(raw)) return raw as V;
      const near = closest(raw, values);
      throw new UsageError(`--${name} must be one of ${values.join(', ')}, got '${raw}'${near ? ` (did you mean '${near}'?)` : ''}`);
    },
  });
}

export interface IntListOptions<K extends string> extends Common<(number | K)[]> {
  min?: number;
  max?: number;
  /** Words allowed as items besides integers (e.g. `all`). */
  keywords?: readonly K[];
}

function splitList(raw: string, name: string): string[] {
  const items = raw.split(',').map((s) => s.trim());
  if (items.some((s) => s === '')) throw new UsageError(`--${name} has an empty item in '${raw}' (write items separated by commas: 2,4)`);
  return items;
}

function intList<const K extends string = never, const O extends IntListOptions<K> = IntListOptions<K>>(
  o: O & IntListOptions<K>,
): Flag<(number | K)[], Present<O>> {
  const words = (o.keywords ?? []) as readonly string[];
  const item = intAccepts(o.min, o.max).replace('integer', 'integers');
  const accepts = `comma list of ${item}${words.length ? ` or ${words.map((w) => `'${w}'`).join(', ')}` : ''}`;
  return make<(number | K)[], O>(o, {
    valueName: words.length ? `N,…|${words.join('|')}` : 'N,N,…',
    accepts,
    parse: (raw, name) =>
      splitList(raw, name).map((s) => {
        if (words.includes(s)) return s as K;
        const n = readNumber(s);
        if (n === undefined || !Number.isInteger(n) || (o.min !== undefined && n < o.min))
          throw new UsageError(`--${name} must be a ${accepts}, got '${s}' in '${raw}'`);
        if (!Number.isSafeInteger(n) || (o.max !== undefined && n > o.max))
          throw new UsageError(`--${name} item ${s} is too large (at most ${o.max ?? Number.MAX_SAFE_INTEGER})`);
        return n;
      }),
  });
}

export interface ListOptions<V extends string> extends Common<V[]> {
  choices?: readonly V[];
}

function list<const V extends string = string, const O extends ListOptions<V> = ListOptions<V>>(
  o: O & ListOptions<V>,
): Flag<V[], Present<O>> {
  const choices = o.choices as readonly string[] | undefined;
  return make<V[], O>(o, {
    valueName: choices ? `${choices.join('|')},…` : 'A,B,…',
    accepts: choices ? `comma list of ${choices.join(', ')}` : 'comma list',
    parse: (raw, name) =>
      splitList(raw, name).map((s) => {
        if (choices && !choices.includes(s)) {
          const near = closest(s, choices);
          throw new UsageError(
            `--${name} items must be among ${choices.join(', ')}, got '${s}'${near ? ` (did you mean '${near}'?)` : ''}`,
          );
        }
        return s as V;
      }),
  });
}

function bool(o: { help: string; short?: string }): Flag<boolean, true> {
  return {
    help: o.help,
    short: o.short,
    required: false,
    default: false,
    valueName: undefined,
    accepts: 'no value',
    parse: () => true,
  };
}

/** Flag builders: `flag.positiveInt({ help, default: 8, max: 4096 })` and so on. */
export const flag = {
  string: str,
  file,
  int,
  positiveInt: <const O extends Omit<IntOptions, 'min'>>(o: O) => int<O & { min: 1 }>({ ...o, min: 1 }),
  nonNegativeInt: <const O extends Omit<IntOptions, 'min'>>(o: O) => int<O & { min: 0 }>({ ...o, min: 0 }),
  float,
  enum: choice,
  intList,
  list,
  bool,
};

/** `--quiet` and `--json`, the same on every command that reports progress or a result. */
export const outputFlags = {
  quiet: bool({ help: 'no progress output, only the result', short: 'q' }),
  json: bool({ help: 'print one JSON object at the end and nothing else on stdout' }),
};

/** Positional arguments of a command: a name for help and errors, how many, optional choices. */
export interface ArgsSpec {
  /** As shown in usage and errors: `RUN_DIR`, `suite`. */
  name: string;
  help: string;
  /** Fewest allowed (default 0). */
  min?: number;
  /** Most allowed (default 1; `Infinity` for any number). */
  max?: number;
  choices?: readonly string[];
}

export interface CommandSpec<F extends Flags> {
  /** As typed after `foxgate` (`report`, `bench`). */
  name: string;
  /** One line for `foxgate --help`. */
  summary: string;
  args?: ArgsSpec;
  flags: F;
  /** Text after the options in `--help`. */
  notes?: string;
  examples?: readonly string[];
}

export interface Parsed<F extends Flags> {
  flags: FlagValues<F>;
  args: string[];
}

/** A command in the `COMMANDS` table of main.ts. */
export interface Command {
  name: string;
  summary: string;
  help(): string;
  /** Runs with the arguments after the command name; resolves to the exit code. */
  run(argv: string[]): Promise<number>;
}

/** Levenshtein distance (for "did you mean"). */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

/** The candidate nearest to `word` when it is near enough to be a likely typo, else undefined. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = c.startsWith(word) && word.length >= 2 ? 0.5 : editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) [best, bestD] = [c, d];
  }
  return best !== undefined && bestD <= Math.max(1, Math.floor(0.4 * Math.max(word.length, best.length))) ? best : undefined;
}

const camel = (s: string) => s.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());

function argCount(a: ArgsSpec | undefined): [number, number] {
  return a ? [a.min ?? 0, a.max ?? 1] : [0, 0];
}

function usageLine(spec: CommandSpec<Flags>): string {
  const parts = [`foxgate ${spec.name}`];
  const [min, max] = argCount(spec.args);
  if (spec.args) {
    const one = max > 1 ? `${spec.args.name}...` : spec.args.name;
    parts.push(min > 0 ? one : `[${one}]`);
  }
  for (const [name, f] of Object.entries(spec.flags)) if (f.required) parts.push(`--${name} ${f.valueName}`);
  parts.push('[options]');
  return parts.join(' ');
}

/** The `--help` text of a command, generated from its declaration. */
export function helpText(spec: CommandSpec<Flags>): string {
  const lines = [`usage: ${usageLine(spec)}`, '', spec.summary];
  if (spec.args) {
    const a = spec.args;
    const help = a.help.includes('\n') || !a.choices ? a.help : `${a.help} (${a.choices.join(', ')})`;
    lines.push('', 'arguments:', `  ${a.name}  ${help.split('\n').join(`\n  ${' '.repeat(a.name.length)}  `)}`);
  }
  const rows: [string, string][] = Object.entries(spec.flags).map(([name, f]) => {
    const left = `${f.short ? `-${f.short}, ` : ''}--${name}${f.valueName ? ` ${f.valueName}` : ''}`;
    const extra: string[] = [];
    if (f.valueName && !f.valueName.includes('|') && !['text', 'a path', 'a file path to write'].includes(f.accepts)) extra.push(f.accepts);
    if (f.required) extra.push('required');
    else if (f.default !== undefined && f.default !== false)
      extra.push(`default ${Array.isArray(f.default) ? f.default.join(',') : f.default}`);
    else if (f.defaultHint !== undefined) extra.push(`default ${f.defaultHint}`);
    return [left, `${f.help}${extra.length ? ` (${extra.join('; ')})` : ''}`];
  });
  rows.push(['-h, --help', 'show this help']);
  const w = Math.max(...rows.map(([l]) => l.length));
  lines.push('', 'options:', ...rows.map(([l, r]) => `  ${l.padEnd(w)}  ${r}`));
  if (spec.notes) lines.push('', spec.notes);
  if (spec.examples?.length) lines.push('', 'examples:', ...spec.examples.map((e) => `  ${e}`));
  return lines.join('\n');
}

const isShortFlag = (a: string) => /^-[a-zA-Z]$/.test(a);
/** A token that cannot be a flag's value (`--x`, `-q`); `-5` and `-` can. */
const looksLikeFlag = (a: string) => a.startsWith('--') || isShortFlag(a);

/** Whether argv asks for help (`--help` or `-h` before any `--`). */
export function wantsHelp(argv: readonly string[]): boolean {
  for (const a of argv) {
    if (a === '--') return false;
    if (a === '--help' || a === '-h') return true;
  }
  return false;
}

/**
 * Parses `argv` (the arguments after the command name) against `spec`. Every mistake throws a
 * one-line `UsageError` `name: …`: an unknown flag (with the closest one), a missing or bad
 * value, a flag given twice, a missing required flag, a missing or extra positional argument,
 * a value out of range or too large, an unwritable output file. `--help` is not handled here
 * (see `wantsHelp` and `defineCommand`).
 */
export function parseCommand<F extends Flags>(spec: CommandSpec<F>, argv: readonly string[]): Parsed<F> {
  const cmd = spec.name;
  const err = (msg: string) => new UsageError(`${cmd}: ${msg}`);
  const names = Object.keys(spec.flags);
  const byShort = new Map(names.filter((n) => spec.flags[n].short).map((n) => [spec.flags[n].short as string, n]));
  const raw = new Map<string, string | true>();
  const args: string[] = [];
  const see = `see 'foxgate ${cmd} --help'`;

  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      args.push(...argv.slice(i + 1));
      break;
    }
    let name: string;
    let inline: string | undefined;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      inline = eq < 0 ? undefined : a.slice(eq + 1);
      if (!(name in spec.flags)) {
        const near = closest(name, names);
        throw err(`unknown flag '--${name}'${near ? ` (did you mean --${near}?)` : ` (${see})`}`);
      }
    } else if (isShortFlag(a)) {
      const long = byShort.get(a[1]);
      if (!long) throw err(`unknown flag '${a}' (${see})`);
      name = long;
    } else if (a.startsWith('-') && a.length > 1 && readNumber(a) === undefined) {
      throw err(`unknown flag '${a}' (flags are written --name; ${see})`);
    } else {
      args.push(a);
      continue;
    }
    const f = spec.flags[name];
    if (raw.has(name)) throw err(`--${name} is given twice`);
    if (f.valueName === undefined) {
      if (inline !== undefined) throw err(`--${name} takes no value (got '--${name}=${inline}')`);
      raw.set(name, true);
      continue;
    }
    if (inline === undefined) {
      const next = argv[i + 1];
      if (next === undefined || looksLikeFlag(next))
        throw err(`--${name} needs a value (${f.valueName}; write --${name}=VALUE for a value that starts with '-')`);
      inline = next;
      i++;
    }
    raw.set(name, inline);
  }

  const [min, max] = argCount(spec.args);
  if (args.length > max) {
    const extra = args[max];
    throw err(
      max === 0
        ? `unexpected argument '${extra}' (${cmd} takes no positional arguments)`
        : `unexpected argument '${extra}' (${cmd} takes ${max === 1 ? 'one' : `at most ${max}`} ${spec.args?.name})`,
    );
  }
  if (args.length < min) throw err(`missing ${spec.args?.name} (usage: ${usageLine(spec)})`);
  const choices = spec.args?.choices;
  if (choices) {
    for (const a of args) {
      if (choices.includes(a)) continue;
      const near = closest(a, choices);
      throw err(`unknown ${spec.args?.name} '${a}' (${spec.args?.name}s: ${choices.join(', ')})${near ? `; did you mean '${near}'?` : ''}`);
    }
  }

  const values: Record<string, unknown> = {};
  for (const name of names) {
    const f = spec.flags[name];
    const r = raw.get(name);
    if (r === undefined) {
      if (f.required) throw err(`--${name} is required (${f.valueName ?? 'flag'}: ${f.help})`);
      values[camel(name)] = f.default;
      continue;
    }
    try {
      values[camel(name)] = r === true ? true : f.parse(r, name);
    } catch (e) {
      throw e instanceof UsageError ? err(e.message) : e;
    }
  }
  for (const name of names) {
    const f = spec.flags[name];
    const v = values[camel(name)];
    if (!f.check || !raw.has(name)) continue;
    try {
      f.check(v, name);
    } catch (e) {
      throw e instanceof UsageError ? err(e.message) : e;
    }
  }
  return { flags: values as FlagValues<F>, args };
}

/**
 * Declares a command: `--help` prints the generated help (exit 0), anything else is parsed
 * (mistakes throw a `UsageError`, which main.ts prints as one line, exit 2) and handed to `run`.
 */
export function defineCommand<const F extends Flags>(spec: CommandSpec<F>, run: (p: Parsed<F>) => Promise<number>): Command {
  return {
    name: spec.name,
    summary: spec.summary,
    help: () => helpText(spec),
    run: async (argv) => {
      if (wantsHelp(argv)) {
        console.log(helpText(spec));
        return 0;
      }
      return run(parseCommand(spec, argv));
    },
  };
}

const UNITS = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];

/** `1.5 GB` for a byte count. */
export function formatBytes(n: number): string {
  let i = 0;
  while (n >= 1000 && i < UNITS.length - 1) [n, i] = [n / 1000, i + 1];
  return `${i === 0 ? n : n.toPrecision(3)} ${UNITS[i]}`;
}

/**
 * Throws a one-line `UsageError` when `elements × bytesPerElement` is more than `limitBytes`
 * (e.g. `--batch` × `--context` × vocab logits on a 2 GiB WebGPU buffer): a size the command
 * could not allocate, reported before the work starts. `what` names the flags involved.
 */
export function checkAllocation(what: string, elements: number, bytesPerElement: number, limitBytes: number): void {
  const bytes = elements * bytesPerElement;
  if (!Number.isFinite(bytes) || bytes > limitBytes)
    throw new UsageError(`${what} is too large to allocate: ${formatBytes(bytes)} (at most ${formatBytes(limitBytes)})`);
}
