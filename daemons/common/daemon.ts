// What every daemon's main does the same way: parse `--config FILE`, repeated `--set key=value`
// and `--help-config`; load and validate the config; set up logging, metrics and /healthz; stop
// cleanly on SIGTERM/SIGINT; and log a fatal line (then exit non-zero) on a bug. Bad flags or a bad
// config exit with code 2 and one line saying what is wrong.
import { parseArgs } from 'node:util';
import type { Registry } from 'prom-client';
import type { z } from 'zod';
import { ConfigError, formatConfigHelp, loadConfig } from './config.js';
import { createLogger, type Logger } from './log.js';
import {
  createMetricsRegistry,
  type Health,
  startStatusServer,
  type StatusServer,
} from './status-server.js';

export interface DaemonContext<C> {
  config: C;
  log: Logger;
  registry: Registry;
}

export interface RunningDaemon {
  stop(): Promise<void>;
  health(): Health;
  /** Extra fields for the "ready" log line (addresses tests and tools read). */
  ready: Record<string, unknown>;
}

export interface DaemonDefinition<S extends z.ZodType> {
  role: string;
  schema: S;
  envPrefix: string;
  nodeId: (config: z.output<S>) => number | string;
  status: (config: z.output<S>) => { host: string; port: number };
  start: (ctx: DaemonContext<z.output<S>>) => Promise<RunningDaemon>;
}

function usageError(role: string, message: string): never {
  process.stderr.write(`threefs ${role}: ${message}\n`);
  process.exit(2);
}

export async function runDaemon<S extends z.ZodType>(
  definition: DaemonDefinition<S>,
  argv = process.argv.slice(2),
): Promise<void> {
  let values: { config?: string; set?: string[]; 'help-config'?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        config: { type: 'string' },
        set: { type: 'string', multiple: true },
        'help-config': { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    usageError(definition.role, (err as Error).message);
  }
  if (values['help-config']) {
    process.stdout.write(`${formatConfigHelp(definition.schema, definition.envPrefix)}\n`);
    return;
  }
  let config: z.output<S>;
  try {
    config = loadConfig(definition.schema, {
      file: values.config,
      envPrefix: definition.envPrefix,
      overrides: values.set ?? [],
    });
  } catch (err) {
    if (err instanceof ConfigError) usageError(definition.role, err.message);
    throw err;
  }

  const log = createLogger({ role: definition.role, nodeId: definition.nodeId(config) });
  process.on('uncaughtException', (err) => {
    log.fatal({ err }, 'uncaught exception: this is a bug; exiting');
    process.exit(70);
  });
  process.on('unhandledRejection', (err) => {
    log.fatal({ err }, 'unhandled rejection: this is a bug; exiting');
    process.exit(70);
  });

  const registry = createMetricsRegistry(definition.role);
  let daemon: RunningDaemon;
  let status: StatusServer;
  try {
    daemon = await definition.start({ config, log, registry });
    status = await startStatusServer({
      ...definition.status(config),
      registry,
      health: () => daemon.health(),
    });
  } catch (err) {
    log.fatal({ err }, 'failed to start');
    process.exit(1);
  }
  log.info({ ...daemon.ready, status: status.url }, `${definition.role} ready`);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    Promise.all([daemon.stop(), status.close()]).then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'unclean stop');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
