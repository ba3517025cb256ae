/**
 * Progress of a long job (step / total, loss, tokens/s, ETA): a redrawn bar on a terminal,
 * plain lines every 10% (and at least every 30 s) when the output is a file or a pipe, nothing
 * with `quiet`. With `json` stdout is left to the command's one JSON object: progress goes to
 * stderr instead.
 */

/** The stream progress writes to (process.stdout or a test double). */
export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  total: number;
  label?: string;
  /** Nothing at all, not even `log` lines. */
  quiet?: boolean;
  /** The command prints one JSON object on stdout at the end: progress goes to stderr. */
  json?: boolean;
  /** Default: stdout (stderr with `json`). */
  stream?: ProgressStream;
  /** Clock in ms (tests). */
  now?: () => number;
}

export interface ProgressStats {
  loss?: number;
  tokensPerSecond?: number;
}

export interface Progress {
  /** `step` of `total` is done. */
  update(step: number, stats?: ProgressStats): void;
  /** A line of its own (e.g. an evaluation result), printed above the bar. */
  log(line: string): void;
  /** Finishes the bar (prints the last state); further calls do nothing. */
  done(): void;
}

const CLEAR = '\r\x1b[2K';
const BAR = 24;
const PLAIN_EVERY_MS = 30_000;

/** `45s`, `1m20s`, `2h03m`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** `950`, `5.1k`, `12.3M`. */
export function formatRate(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return n.toFixed(0);
}

/** Creates the progress display of one job. */
export function progress(opts: ProgressOptions): Progress {
  const now = opts.now ?? Date.now;
  const total = Math.max(0, opts.total);
  const label = opts.label ?? '';
  const stream: ProgressStream | undefined = opts.quiet ? undefined : (opts.stream ?? (opts.json ? process.stderr : process.stdout));
  const tty = stream?.isTTY === true;
  let first: { t: number; step: number } | undefined;
  let step = 0;
  let stats: ProgressStats = {};
  let lastDraw = -Infinity;
  let lastPlain = { t: -Infinity, step: -1 };
  let finished = false;

  const eta = (): number => {
    if (!first || step <= first.step) return Number.NaN;
    const rate = (step - first.step) / ((now() - first.t) / 1000);
    return (total - step) / rate;
  };
  const parts = (): string[] => {
    const p: string[] = [];
    if (stats.loss !== undefined) p.push(`loss ${Number.isFinite(stats.loss) ? stats.loss.toFixed(4) : String(stats.loss)}`);
    if (stats.tokensPerSecond !== undefined) p.push(`${formatRate(stats.tokensPerSecond)} tok/s`);
    p.push(step >= total ? `in ${formatDuration(first ? (now() - first.t) / 1000 : 0)}` : `ETA ${formatDuration(eta())}`);
    return p;
  };
  const pct = () => (total > 0 ? Math.floor((100 * Math.min(step, total)) / total) : 100);
  const barLine = (): string => {
    const filled = total > 0 ? Math.round((BAR * Math.min(step, total)) / total) : BAR;
    const line = [
      `${label ? `${label} ` : ''}${'█'.repeat(filled)}${'░'.repeat(BAR - filled)}`,
      `${step}/${total}`,
      `${pct()}%`,
      ...parts(),
    ].join('  ');
    const cols = stream?.columns ?? 0;
    return cols > 10 && line.length >= cols ? line.slice(0, cols - 1) : line;
  };
  const plainLine = () => `${label ? `${label} ` : ''}${step}/${total} (${pct()}%) ${parts().join(', ')}\n`;
  const draw = () => {
    stream?.write(CLEAR + barLine());
    lastDraw = now();
  };
  const plain = () => {
    stream?.write(plainLine());
    lastPlain = { t: now(), step };
  };

  return {
    update(s, st) {
      if (finished || !stream) return;
      step = s;
      if (st) stats = { ...stats, ...st };
      const t = now();
      if (!first) first = { t, step: s };
      if (tty) {
        if (t - lastDraw >= 100 || s >= total) draw();
        return;
      }
      const tenth = Math.max(1, Math.ceil(total / 10));
      const crossed = Math.floor(s / tenth) > Math.floor(Math.max(lastPlain.step, 0) / tenth) || lastPlain.step < 0;
      if (s !== lastPlain.step && (crossed || t - lastPlain.t >= PLAIN_EVERY_MS || s >= total)) plain();
    },
    log(line) {
      if (!stream) return;
      if (tty && first && !finished) {
        stream.write(`${CLEAR}${line}\n`);
        draw();
      } else stream.write(`${line}\n`);
    },
    done() {
      if (finished || !stream) {
        finished = true;
        return;
      }
      finished = true;
      if (!first) return;
      if (tty) stream.write(`${CLEAR}${barLine()}\n`);
      else if (lastPlain.step !== step) plain();
    },
  };
}
