// A small command framework for the `threefs` CLI: each command declares its flags as a zod object
// (the single source of truth for CLI input), gets them parsed, coerced and validated, and returns
// rows or an object. Bad flags exit with code 2 and one line; an unreachable cluster exits with 3.
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { ThreeFsError } from '../common/errors.js';

export class UsageError extends Error {
  override name = 'UsageError';
}

export interface CommandOutput {
  /** Printed as a table by default, as JSON with --json. */
  rows?: Array<Record<string, unknown>>;
  /** Anything else to print; objects print as JSON, strings as they are. */
  value?: unknown;
}

export interface Command<S extends z.ZodObject = z.ZodObject> {
  name: string;
  summary: string;
  flags: S;
  run(flags: z.output<S>): Promise<CommandOutput>;
}

export function defineCommand<S extends z.ZodObject>(command: Command<S>): Command<S> {
  return command;
}

function baseType(schema: z.ZodType): string {
  let current = schema;
  while (
    current instanceof z.ZodDefault ||
    current instanceof z.ZodOptional ||
    current instanceof z.ZodPrefault ||
    current instanceof z.ZodPipe
  ) {
    current = (current instanceof z.ZodPipe ? current.def.in : current.unwrap()) as z.ZodType;
  }
  return current.def.type;
}

const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** Parses argv against the command's zod flags: `--chain-id 5` fills `chainId`. */
export function parseFlags<S extends z.ZodObject>(
  command: Command<S>,
  argv: string[],
): z.output<S> {
  const shape = command.flags.shape as Record<string, z.ZodType>;
  const options: Record<string, { type: 'string' | 'boolean' }> = {};
  for (const [name, schema] of Object.entries(shape)) {
    options[kebab(name)] = { type: baseType(schema) === 'boolean' ? 'boolean' : 'string' };
  }
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new UsageError(`${command.name}: ${(err as Error).message}`);
  }
  const raw: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(shape)) {
    const value = values[kebab(name)];
    if (value === undefined) continue;
    raw[name] = typeof value === 'string' && baseType(schema) === 'number' ? Number(value) : value;
  }
  const result = command.flags.safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues
      .map((i) => `--${kebab(String(i.path[0] ?? ''))}: ${i.message}`)
      .join('; ');
    throw new UsageError(`${command.name}: ${problems}`);
  }
  return result.data;
}

export function flagHelp(command: Command): string {
  const shape = command.flags.shape as Record<string, z.ZodType>;
  const lines = Object.entries(shape).map(([name, schema]) => {
    const type = baseType(schema);
    const optional = schema.safeParse(undefined).success;
    return `  --${kebab(name)}${type === 'boolean' ? '' : ` <${type}>`}${optional ? '' : ' (required)'}  ${schema.description ?? ''}`;
  });
  return `${command.name}: ${command.summary}\n${lines.join('\n')}`;
}

/** Formats rows as an aligned text table. */
export function formatTable(rows: Array<Record<string, unknown>>): string {
  if (rows.length === 0) return '(none)';
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cell = (v: unknown) =>
    v === undefined || v === null
      ? ''
      : Array.isArray(v)
        ? v.join(',')
        : typeof v === 'object'
          ? JSON.stringify(v)
          : String(v);
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => v.padEnd(widths[i] as number))
      .join('  ')
      .trimEnd();
  return [
    line(columns.map((c) => c.toUpperCase())),
    ...rows.map((r) => line(columns.map((c) => cell(r[c])))),
  ].join('\n');
}

/** Exit codes: 0 ok, 1 refused by the cluster, 2 bad usage, 3 cluster unreachable. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof UsageError) return 2;
  if (err instanceof ThreeFsError) {
    if (
      err.code === 'UNAVAILABLE' ||
      err.code === 'DEADLINE_EXCEEDED' ||
      err.code === 'HANDSHAKE_REFUSED'
    )
      return 3;
    if (err.code === 'INVALID_ARGUMENT') return 2;
    return 1;
  }
  return 1;
}
