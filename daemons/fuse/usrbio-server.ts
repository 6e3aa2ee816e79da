// The FUSE daemon's USRBIO listener (brief §6.2): a unix socket at <dir>/<st_dev>.sock that
// programs find from the mount point. One UsrbioSession per connection, a bounded number of them;
// any user may connect (the socket is 0666) because each session acts as its peer's uid/gid and
// only on files that peer already opened through the mount.
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import net from 'node:net';
import type { FileApi } from '../client/file-api.js';
import type { Logger } from '../common/log.js';
import { usrbioSocketPath } from '../common/usrbio-protocol.js';
import type { CallerGroups } from './caller-groups.js';
import { type UsrbioLimits, UsrbioSession } from './usrbio-session.js';

export interface UsrbioServerOptions {
  api: FileApi;
  mountDev: number;
  dir: string;
  maxSessions: number;
  limits: UsrbioLimits;
  /** Let storage servers on this host read straight into the programs' regions. */
  sharedMemoryReads: boolean;
  groups: CallerGroups;
  /** A ring write changed file `inode` (called before its completion is posted). */
  onFileChanged: (inode: number) => void;
  log: Logger;
}

export interface RunningUsrbioServer {
  socketPath: string;
  readonly sessions: number;
  /** Over every connection so far: completion batches posted, and doorbells rung for them. */
  totals(): { posted: number; doorbells: number };
  stop(): Promise<void>;
}

/** Removes a socket left by a daemon that died on the same device number; refuses anything else. */
async function clearStaleSocket(file: string): Promise<void> {
  const st = await lstat(file).catch(() => undefined);
  if (!st) return;
  if (!st.isSocket()) throw new Error(`${file} exists and is not a socket`);
  await unlink(file);
}

export async function startUsrbioServer(
  options: UsrbioServerOptions,
): Promise<RunningUsrbioServer> {
  const socketPath = usrbioSocketPath(options.dir, options.mountDev);
  await mkdir(options.dir, { recursive: true, mode: 0o755 });
  await clearStaleSocket(socketPath);
  const sessions = new Set<UsrbioSession>();
  const ended = { posted: 0, doorbells: 0 };
  const server = net.createServer((socket) => {
    if (sessions.size >= options.maxSessions) {
      socket.end(
        `${JSON.stringify({ t: 'reply', req: 0, ok: false, code: 'RESOURCE_EXHAUSTED', message: `at most ${options.maxSessions} usrbio connections` })}\n`,
      );
      return;
    }
    const session = new UsrbioSession(socket, options);
    sessions.add(session);
    void session.finished.then(() => {
      sessions.delete(session);
      ended.posted += session.posted;
      ended.doorbells += session.doorbells;
    });
    session.start().catch((err: unknown) => {
      options.log.warn({ err }, 'usrbio connection could not start');
      void session.close();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => options.log.error({ err }, 'usrbio listener failed'));
  await chmod(socketPath, 0o666);
  options.log.info({ socketPath }, 'usrbio listening');
  return {
    socketPath,
    get sessions() {
      return sessions.size;
    },
    totals: () => {
      const sum = { ...ended };
      for (const s of sessions) {
        sum.posted += s.posted;
        sum.doorbells += s.doorbells;
      }
      return sum;
    },
    stop: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.allSettled([...sessions].map((s) => s.close()));
      await closed;
      await unlink(socketPath).catch(() => undefined);
    },
  };
}
