/** String helpers of the WGSL generators. */

export const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** `f(0) … f(n−1)`, one per line. */
export const lines = (n: number, f: (i: number) => string): string => range(n).map(f).join('\n');

/** vec4 component names. */
export const comp = ['x', 'y', 'z', 'w'];

/** Number of vec4 groups of D. */
export function dv(D: number): number {
  return Math.ceil(D / 4);
}
