import { runBench } from './commands/bench.js';
import { runInfo } from './commands/info.js';
import { reportError, UsageError } from './errors.js';
import { VERSION } from './version.js';

interface Command {
  summary: string;
  run: (args: string[]) => Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  info: { summary: 'version, CPU backend and WebGPU adapter (or why none was found)', run: runInfo },
  bench: { summary: 'benchmarks: `bench ops`, `bench attention`, `bench cpu` (prints a table)', run: runBench },
};

export function usage(): string {
  const names = Object.keys(COMMANDS);
  const w = Math.max(...names.map((n) => n.length));
  return [
    `foxgate ${VERSION} — forgetting attention, ACP and SPARSEK on WebGPU and CPU`,
    '',
    'usage: foxgate <command> [options]',
    '',
    ...names.map((n) => `  ${n.padEnd(w)}  ${COMMANDS[n].summary}`),
    '',
    'Run `foxgate <command> --help` for its options.',
  ].join('\n');
}

/** Runs the CLI with `argv` (without node and script); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return 0;
  }
  if (name === '--version' || name === '-v') {
    console.log(VERSION);
    return 0;
  }
  const cmd = COMMANDS[name];
  try {
    if (!cmd) throw new UsageError(`unknown command '${name}' (commands: ${Object.keys(COMMANDS).join(', ')})`);
    return await cmd.run(rest);
  } catch (e) {
    return reportError(e);
  }
}
