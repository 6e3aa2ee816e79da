// The USRBIO control protocol between a program and the FUSE daemon: one JSON object per line
// over a unix socket. Requests carry `req` and get exactly one reply with the same `req`;
// doorbells ({"t":"sq"} from the program: new SQEs or freed CQ slots; {"t":"cq"} from the
// daemon: new CQEs, sent only when the program armed a wake-up in the region) have none. Both
// sides write doorbells as the exact lines below and recognise them before any JSON parsing:
// one arrives per batch of I/O. Data never crosses this socket: it moves through the shared
// region. The socket of a mount is `<dir>/<st_dev of the mount point>.sock`, so a program finds
// it from the mount point alone and two mounts never share one.
import path from 'node:path';
import { z } from 'zod';

export const DEFAULT_USRBIO_DIR = '/run/threefs/usrbio';
/** Longest control line either side accepts; longer input closes the connection. */
export const MAX_LINE_BYTES = 4_096;

export const SQ_DOORBELL = '{"t":"sq"}';
export const CQ_DOORBELL = '{"t":"cq"}';

export function usrbioSocketPath(dir: string, mountDev: number): string {
  return path.join(dir, `${mountDev}.sock`);
}

const req = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

export const ProgramMessage = z.discriminatedUnion('t', [
  /** Register the region: the memfd's number in the program, its shape. */
  z.object({
    t: z.literal('hello'),
    req,
    fd: z
      .number()
      .int()
      .nonnegative()
      .max(1 << 30),
    entries: z.number().int().positive().max(65_536),
    dataBytes: z.number().int().positive(),
  }),
  /** Register a file the program opened through the mount (its descriptor number). */
  z.object({
    t: z.literal('file'),
    req,
    fd: z
      .number()
      .int()
      .nonnegative()
      .max(1 << 30),
    write: z.boolean(),
  }),
  z.object({ t: z.literal('unfile'), req, id: z.number().int().positive() }),
  z.object({ t: z.literal('sq') }),
]);
export type ProgramMessage = z.output<typeof ProgramMessage>;

export const DaemonMessage = z.union([
  z.object({ t: z.literal('cq') }),
  z.object({
    t: z.literal('reply'),
    req,
    ok: z.literal(true),
    id: z.number().int().positive().optional(),
    inode: z.number().int().nonnegative().optional(),
  }),
  z.object({
    t: z.literal('reply'),
    req,
    ok: z.literal(false),
    code: z.string(),
    message: z.string(),
  }),
]);
export type DaemonMessage = z.output<typeof DaemonMessage>;

/**
 * Splits socket input into lines; keeps the unfinished tail. Returns null when a line grows
 * past MAX_LINE_BYTES (the caller closes the connection rather than buffer without bound).
 */
export function splitLines(
  pending: string,
  chunk: string,
): { lines: string[]; rest: string } | null {
  const text = pending + chunk;
  const lines = text.split('\n');
  const rest = lines.pop() ?? '';
  if (rest.length > MAX_LINE_BYTES || lines.some((l) => l.length > MAX_LINE_BYTES)) return null;
  return { lines: lines.filter((l) => l.length > 0), rest };
}

/**
 * The access mode of a descriptor from its /proc/<pid>/fdinfo text ("flags:\t0100002", octal):
 * what the program may do with it through USRBIO. null when the text has no flags line.
 */
export function accessOfFdinfo(fdinfo: string): { read: boolean; write: boolean } | null {
  const match = /^flags:\s+([0-7]+)$/m.exec(fdinfo);
  if (!match?.[1]) return null;
  const mode = parseInt(match[1], 8) & 3; // O_ACCMODE
  if (mode === 3) return null;
  return { read: mode !== 1, write: mode !== 0 };
}
