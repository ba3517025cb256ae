import type { Command } from './args.js';
import { benchCommand } from './commands/bench.js';
import { dialogStudyCommand } from './commands/dialog-study.js';
import { evalCommand } from './commands/eval.js';
import { generateCommand } from './commands/generate.js';
import { infoCommand } from './commands/info.js';
import { reportCommand } from './commands/report.js';
import { trainCommand } from './commands/train.js';
import { reportError, UsageError } from './errors.js';
import { VERSION } from './version.js';

/** The commands, in the order `foxgate --help` lists them. Add one: `defineCommand(...)` in commands/, then a line here. */
export const COMMANDS: readonly Command[] = [
  trainCommand,
  evalCommand,
  generateCommand,
  dialogStudyCommand,
  reportCommand,
  benchCommand,
  infoCommand,
];

export function usage(): string {
  const w = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    `foxgate ${VERSION} — forgetting attention, ACP and SPARSEK on WebGPU and CPU`,
    '',
    'usage: foxgate <command> [options]',
    '',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`),
    '',
    'Run `foxgate <command> --help` for its options. Exit codes: 0 ok, 2 usage or input error, 130 interrupted, 70 internal error.',
  ].join('\n');
}

/** Runs the CLI with `argv` (without node and script); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h') {
    console.log(usage());
    return 0;
  }
  if (name === '--version' || name === '-v') {
    console.log(VERSION);
    return 0;
  }
  try {
    if (name === 'help') {
      if (rest.length === 0) {
        console.log(usage());
        return 0;
      }
      return await command(rest[0]).run(['--help']);
    }
    return await command(name).run(rest);
  } catch (e) {
    return reportError(e);
  }
}

function command(name: string): Command {
  const cmd = COMMANDS.find((c) => c.name === name);
  if (cmd) return cmd;
  const names = COMMANDS.map((c) => c.name);
  const hint = name.startsWith('-') ? ' (give the command first: foxgate <command> [options])' : '';
  throw new UsageError(`unknown command '${name}' (commands: ${names.join(', ')})${hint}`);
}
