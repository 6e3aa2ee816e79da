#!/usr/bin/env node
// `threefs`: the command line. `threefs admin <command> [--flags]`; `threefs help`.
import { adminCommands } from './admin.js';
import { mountCommand } from '../fuse/mount-command.js';
import { LocalFlags, localDown, localStatus, localUp } from './local-cluster.js';
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
  const local = Object.entries(localCommands)
    .map(([n, c]) => `  ${n.padEnd(20)} ${c.summary}`)
    .join('\n');
  return `usage: threefs <admin|local> <command> [--flags]\n       threefs mount <mgmtd-address[,more]> <dir> [--cluster-id ID] [--set key=value]   (add --help for a command's flags)\n\nlocal commands:\n${local}\n\nadmin commands:\n${list}\n`;
}

const localCommands = {
  up: { summary: 'start a whole cluster on this machine and mount it', run: localUp },
  down: { summary: 'stop the local cluster and unmount', run: localDown },
  status: { summary: 'processes and chain health of the local cluster', run: localStatus },
} as const;

async function runLocal(name: string | undefined, argv: string[]): Promise<number> {
  const entry =
    name && name in localCommands ? localCommands[name as keyof typeof localCommands] : undefined;
  if (!entry)
    throw new UsageError(
      `usage: threefs local up|down|status [--data DIR] [--mount DIR] [--port-base N] [--json]`,
    );
  const command: Command = {
    name: `local ${name}`,
    summary: entry.summary,
    flags: LocalFlags,
    run: entry.run as Command['run'],
  };
  if (argv.includes('--help')) {
    process.stdout.write(`${flagHelp(command)}\n`);
    return 0;
  }
  return print(command, argv);
}

async function print(command: Command, argv: string[]): Promise<number> {
  const flags = parseFlags(command, argv) as { json?: boolean };
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

async function main(argv: string[]): Promise<number> {
  const [group, name, ...rest] = argv;
  if (!group || group === 'help' || group === '--help') {
    process.stdout.write(usage());
    return group ? 0 : 2;
  }
  if (group === 'local') return runLocal(name, rest);
  if (group === 'mount') return mountCommand(argv.slice(1));
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
  return print(command, rest);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`threefs: ${message.split('\n').slice(0, 20).join('\n')}\n`);
    process.exit(exitCodeFor(err));
  },
);
