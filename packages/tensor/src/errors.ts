/**
 * Errors meant for people: one line naming the operation, the argument and what was wrong.
 * `FoxgateError` marks a user error (bad shape, config, file); the CLI prints its message
 * without a stack trace.
 */
export class FoxgateError extends Error {
  override name = 'FoxgateError';
}

/** Throws a FoxgateError `op: message`. */
export function fail(op: string, message: string): never {
  throw new FoxgateError(`${op}: ${message}`);
}

/** Formats a shape as `[2,3,4]` for messages. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}
