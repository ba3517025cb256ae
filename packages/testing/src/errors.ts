import { FoxgateError } from '@foxgate/tensor';
import { expect } from 'vitest';

/**
 * Expects `fn` to throw one FoxgateError with a single-line message that matches every part;
 * returns the message. Shared by the test suites of every package.
 */
export function throwsNaming(fn: () => unknown, ...parts: (string | RegExp)[]): string {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(FoxgateError);
  const msg = (err as Error).message;
  expect(msg).not.toContain('\n');
  for (const p of parts) expect(msg).toMatch(p);
  return msg;
}

/** Like `throwsNaming` for a promise: expects it to reject with one such FoxgateError; returns the message. */
export async function rejectsNaming(p: Promise<unknown>, ...parts: (string | RegExp)[]): Promise<string> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err, 'expected an error').toBeInstanceOf(FoxgateError);
  const msg = (err as Error).message;
  expect(msg).not.toContain('\n');
  for (const part of parts) expect(msg).toMatch(part);
  return msg;
}
