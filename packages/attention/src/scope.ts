import { getRecorder, tidy } from '@foxgate/tensor';

/**
 * Runs `fn` in a `tidy` scope that frees its temporaries, unless a recorder (autograd's tape) is
 * active: then the tape may still need the intermediates for the backward pass and owns them.
 */
export function scoped<T>(fn: () => T): T {
  return getRecorder() ? fn() : tidy(fn);
}
