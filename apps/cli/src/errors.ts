import { FoxgateError } from '@foxgate/tensor';

/** A user error of the CLI itself (bad flag, missing file): printed as one line, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Exit codes of the `foxgate` command. */
export const EXIT = { ok: 0, failure: 1, usage: 2, internal: 70, interrupted: 130 } as const;

const debug = () => process.env.FOXGATE_DEBUG === '1';

/** A Node `util.parseArgs` error (unknown option, missing value): a usage mistake, not a bug. */
function isParseArgsError(e: unknown): e is Error {
  const code = e instanceof Error ? (e as { code?: unknown }).code : undefined;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS');
}

/** The first line of a message, so that a user error never spans lines. */
function oneLine(message: string): string {
  return message.split('\n')[0].trim();
}

/**
 * Prints an error for people and returns the exit code. User errors (`UsageError`, a library's
 * `FoxgateError` raised on bad input, a `parseArgs` error) are one line `foxgate: …` and exit 2,
 * with the stack only when `FOXGATE_DEBUG=1`; anything else is a bug: its stack, exit 70.
 */
export function reportError(e: unknown): number {
  // by name too: a second copy of @foxgate/tensor (two installed versions) has its own class
  const user =
    e instanceof UsageError || e instanceof FoxgateError || (e instanceof Error && e.name === 'FoxgateError') || isParseArgsError(e);
  if (user) {
    console.error(`foxgate: ${oneLine(e.message)}`);
    if (debug() && e.stack) console.error(e.stack);
    return EXIT.usage;
  }
  console.error('foxgate: internal error (please report it):');
  console.error(e instanceof Error && e.stack ? e.stack : e);
  return EXIT.internal;
}
