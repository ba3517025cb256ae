import { FoxgateError } from '@foxgate/tensor';

/** A user error of the CLI itself (bad flag, missing file): printed as one line, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Prints an error for people: user errors as one line, anything else with its stack. */
export function reportError(e: unknown): number {
  if (e instanceof UsageError) {
    console.error(`foxgate: ${e.message}`);
    return 2;
  }
  if (e instanceof FoxgateError) {
    console.error(`foxgate: ${e.message}`);
    return 1;
  }
  console.error('foxgate: internal error (please report it):');
  console.error(e);
  return 70;
}
