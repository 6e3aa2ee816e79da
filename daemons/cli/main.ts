#!/usr/bin/env node
// `threefs`: the command line. `threefs admin <command> [--flags]`; `threefs help`.
import { adminCommands } from './admin.js';
import {
  type Command,
  exitCodeFor,
  flagHelp,
  formatTable,
  parseFlags,
  UsageError,
} from './command.js';

function usage(): string {
  const list = adminCommands.map((c) => `  ${c.name.padEnd(20)} ${c.summary}`).join('\n');
  return `usage: threefs admin <command> [--flags]   (threefs admin <command> --help for its flags)\n\nadmin commands:\n${list}\n`;
}

async function main(argv: string[]): Promise<number> {
  const [group, name, ...rest] = argv;
  if (!group || group === 'help' || group === '--help') {
    process.stdout.write(usage());
    return group ? 0 : 2;
  }
  if (group !== 'admin') throw new UsageError(`unknown command '${group}' (try: threefs help)`);
  const command: Command | undefined = adminCommands.find((c) => c.name === name);
  if (!command)
    throw new UsageError(
      name
        ? `unknown admin command '${name}' (try: threefs help)`
        : 'which admin command? (try: threefs help)',
    );
  if (rest.includes('--help')) {
    process.stdout.write(`${flagHelp(command)}\n`);
    return 0;
  }
  const flags = parseFlags(command, rest) as { json?: boolean };
  const output = await command.run(flags);
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(output.rows ?? output.value, null, 2)}\n`);
  } else if (output.rows) {
    process.stdout.write(`${formatTable(output.rows)}\n`);
  } else if (typeof output.value === 'string') {
    process.stdout.write(`${output.value}\n`);
  } else {
    process.stdout.write(`${JSON.stringify(output.value, null, 2)}\n`);
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`threefs: ${message.split('\n')[0]}\n`);
    process.exit(exitCodeFor(err));
  },
);
