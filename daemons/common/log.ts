// Structured logging: pino, JSON, one line per event. Every logger carries the daemon's role and
// node id; children add the ids of what an event is about (target, chain, inode, request).
import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

export interface LoggerOptions {
  role: string;
  nodeId?: number | string;
  level?: pino.Level | 'silent';
  /** Where lines go; defaults to stdout, written synchronously so a crash loses no line. */
  destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const base: Record<string, unknown> = { role: options.role, pid: process.pid };
  if (options.nodeId !== undefined) base.node = options.nodeId;
  return pino(
    {
      level: options.level ?? (process.env.THREEFS_LOG_LEVEL as pino.Level | undefined) ?? 'info',
      base,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
