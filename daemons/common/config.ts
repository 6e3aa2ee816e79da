// Daemon configuration: one zod schema per daemon is the single source of truth. Values come from,
// lowest precedence first: the schema's defaults, a TOML file, environment variables, and
// command-line `--set key=value` overrides. Every source is validated by the same schema, so a bad
// value anywhere fails startup with a message naming the key and the source.
import { readFileSync } from 'node:fs';
import { parse as parseToml } from 'smol-toml';
import { z } from 'zod';

export interface ConfigSources {
  /** Path of a TOML file; missing keys take the schema's defaults. */
  file?: string | undefined;
  /** Environment to read (defaults to process.env). */
  env?: Record<string, string | undefined>;
  /** Prefix of this daemon's variables, e.g. `THREEFS_MGMTD_`. */
  envPrefix?: string;
  /** `key.path=value` overrides, usually from repeated `--set` flags. */
  overrides?: readonly string[];
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** One leaf setting of a schema: where it lives, how to set it, and its default. */
export interface ConfigKey {
  path: string;
  env: string;
  type: string;
  defaultValue: unknown;
  description: string | undefined;
}

type AnySchema = z.ZodType;

function unwrap(schema: AnySchema): AnySchema {
  let current: AnySchema = schema;
  for (;;) {
    if (
      current instanceof z.ZodDefault ||
      current instanceof z.ZodPrefault ||
      current instanceof z.ZodOptional ||
      current instanceof z.ZodNullable
    ) {
      current = current.unwrap() as AnySchema;
    } else {
      return current;
    }
  }
}

function defaultOf(schema: AnySchema): unknown {
  if (schema instanceof z.ZodDefault || schema instanceof z.ZodPrefault) {
    return (schema.def as { defaultValue: unknown }).defaultValue;
  }
  return undefined;
}

function envName(prefix: string, path: readonly string[]): string {
  const snake = (segment: string) => segment.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
  return prefix + path.map(snake).join('__');
}

/** Every leaf key of a config schema, for `--help-config` output and for reading the environment. */
export function describeConfig(schema: AnySchema, envPrefix = ''): ConfigKey[] {
  const keys: ConfigKey[] = [];
  const walk = (node: AnySchema, path: string[]) => {
    const inner = unwrap(node);
    if (inner instanceof z.ZodObject) {
      for (const [name, child] of Object.entries(inner.shape as Record<string, AnySchema>)) {
        walk(child, [...path, name]);
      }
      return;
    }
    keys.push({
      path: path.join('.'),
      env: envName(envPrefix, path),
      type: inner instanceof z.ZodEnum ? inner.options.join('|') : inner.def.type,
      defaultValue: defaultOf(node),
      description: node.description ?? inner.description,
    });
  };
  walk(schema, []);
  return keys;
}

/** A printable table of the keys, their environment variables and defaults. */
export function formatConfigHelp(schema: AnySchema, envPrefix: string): string {
  return describeConfig(schema, envPrefix)
    .map((key) => {
      const def = key.defaultValue === undefined ? 'required' : JSON.stringify(key.defaultValue);
      const doc = key.description ? `  ${key.description}` : '';
      return `${key.path} (${key.type}, default ${def}, env ${key.env})${doc}`;
    })
    .join('\n');
}

// Text from the environment or a flag becomes the leaf's type before validation, so `"10"` is 10
// for a number key but stays "10" for a string key.
function coerceText(leafType: string, text: string, where: string): unknown {
  switch (leafType) {
    case 'number':
    case 'int': {
      const value = Number(text);
      if (text.trim() === '' || Number.isNaN(value)) {
        throw new ConfigError(`${where}: '${text}' is not a number`);
      }
      return value;
    }
    case 'boolean':
      if (text === 'true' || text === '1') return true;
      if (text === 'false' || text === '0') return false;
      throw new ConfigError(`${where}: '${text}' is not true or false`);
    case 'array':
    case 'record':
    case 'object':
      try {
        return JSON.parse(text) as unknown;
      } catch {
        throw new ConfigError(`${where}: '${text}' is not valid JSON`);
      }
    default:
      return text;
  }
}

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target;
  for (const segment of path.slice(0, -1)) {
    const next = node[segment];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[segment] = {};
    node = node[segment] as Record<string, unknown>;
  }
  node[path[path.length - 1] as string] = value;
}

function readFileLayer(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`config file ${file}: ${(err as Error).message}`);
  }
  try {
    return parseToml(text) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(`config file ${file}: ${(err as Error).message}`);
  }
}

/** Loads and validates a configuration. Throws ConfigError naming every bad key. */
export function loadConfig<S extends AnySchema>(
  schema: S,
  sources: ConfigSources = {},
): z.output<S> {
  const keys = describeConfig(schema, sources.envPrefix ?? '');
  const byPath = new Map(keys.map((key) => [key.path, key]));
  const raw: Record<string, unknown> = sources.file ? readFileLayer(sources.file) : {};

  if (sources.envPrefix) {
    const env = sources.env ?? process.env;
    for (const key of keys) {
      const text = env[key.env];
      if (text !== undefined) {
        setPath(raw, key.path.split('.'), coerceText(key.type, text, `environment ${key.env}`));
      }
    }
  }

  for (const override of sources.overrides ?? []) {
    const eq = override.indexOf('=');
    if (eq <= 0) throw new ConfigError(`--set ${override}: expected key=value`);
    const path = override.slice(0, eq);
    const key = byPath.get(path);
    if (!key) throw new ConfigError(`--set ${override}: unknown key '${path}'`);
    setPath(raw, path.split('.'), coerceText(key.type, override.slice(eq + 1), `--set ${path}`));
  }

  const result = schema.safeParse(raw);
  if (!result.success) {
    const where = sources.file ? ` (file ${sources.file})` : '';
    const problems = result.error.issues
      .map((issue) => `${issue.path.join('.') || '<root>'}: ${issue.message}`)
      .join('; ');
    throw new ConfigError(`invalid configuration${where}: ${problems}`);
  }
  return result.data;
}
