/** Ctrl-C for long jobs: the first one finishes up (saves a checkpoint), the second quits at once. */
import { EXIT } from './errors.js';

export interface InterruptOptions {
  /** Exit code after the handler (default 130, the shell's code for SIGINT). */
  exitCode?: number;
  /** Printed on the first Ctrl-C (default: what happens and how to quit at once). */
  message?: string;
  /** Where the messages go (default stderr). */
  stream?: { write(chunk: string): unknown };
}

/**
 * On the first SIGINT runs `fn` (e.g. save a checkpoint and print a resume hint), then exits
 * with code 130; a second SIGINT while `fn` runs exits at once (130). An error in `fn` is
 * printed as one line and the process still exits 130. Returns a function that removes the
 * handler (call it when the job ends normally: Ctrl-C is then Node's default again).
 */
export function onInterrupt(fn: () => unknown, opts: InterruptOptions = {}): () => void {
  const code = opts.exitCode ?? EXIT.interrupted;
  const out = opts.stream ?? process.stderr;
  let count = 0;
  const handler = () => {
    count++;
    if (count > 1) {
      out.write('\nfoxgate: interrupted again, quitting now\n');
      process.exit(code);
    }
    out.write(`\n${opts.message ?? 'foxgate: interrupted, finishing up (press Ctrl-C again to quit at once)'}\n`);
    Promise.resolve()
      .then(fn)
      .then(
        () => process.exit(code),
        (e: unknown) => {
          out.write(`foxgate: while stopping: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}\n`);
          process.exit(code);
        },
      );
  };
  process.on('SIGINT', handler);
  return () => {
    process.off('SIGINT', handler);
  };
}
