/**
 * Generated WGSL by kernel and configuration. The key must hold every field the generator reads
 * (pass the configuration objects themselves: they are serialised as JSON), so that two
 * configurations differing in any option never share code.
 */
const codeCache = new Map<string, string>();

export function cachedWGSL(kernel: string, config: readonly unknown[], gen: () => string): string {
  const key = `${kernel}:${JSON.stringify(config)}`;
  let c = codeCache.get(key);
  if (c === undefined) {
    c = gen();
    codeCache.set(key, c);
  }
  return c;
}
