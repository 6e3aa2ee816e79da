// Closes the write sessions of clients that died (brief §1.2 "Client sessions", §5.4): mgmtd keeps
// a session per live client; a file session whose client mgmtd no longer lists, and which is older
// than a grace period (the client may have opened it just before its first extendClientSession),
// is closed as if the client had closed it: exact length from storage, session key removed.
// If mgmtd cannot be asked, nothing is pruned: a dead writer only delays GC, a wrongly pruned live
// one would lose its length updates.
import type { MgmtdClient } from '../client/mgmtd-client.js';
import type { Logger } from '../common/log.js';
import { MgmtdService } from '../common/services/mgmtd.js';
import type { NamespaceContext } from './context.js';
import { pruneSessions } from './open-ops.js';

export interface SessionPrunerOptions {
  ctx: NamespaceContext;
  mgmtd: MgmtdClient;
  intervalMs: number;
  graceMs: number;
  log: Logger;
}

/** A session is dead when its client is not live and it is older than the grace period. */
export function isDeadSession(
  live: ReadonlySet<string>,
  clientId: string,
  openedAtMs: number,
  nowMs: number,
  graceMs: number,
): boolean {
  return !live.has(clientId) && nowMs - openedAtMs > graceMs;
}

export class SessionPruner {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;

  constructor(private readonly options: SessionPrunerOptions) {}

  start(): void {
    this.timer = setInterval(() => void this.runOnce(), this.options.intervalMs);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  runOnce(): Promise<number> {
    this.running ??= this.prune()
      .catch((err: unknown) => {
        this.options.log.warn({ err }, 'session pruning skipped');
        return 0;
      })
      .finally(() => (this.running = undefined));
    return this.running;
  }

  private async prune(): Promise<number> {
    const { ctx, mgmtd, graceMs, log } = this.options;
    const { body } = await mgmtd.call(MgmtdService.methods.listClientSessions, {});
    const live = new Set(body.sessions.map((s) => s.clientId));
    const now = ctx.now();
    const pruned = await pruneSessions(
      ctx,
      (clientId, openedAtMs) => isDeadSession(live, clientId, openedAtMs, now, graceMs),
      log,
    );
    if (pruned > 0) log.info({ pruned }, 'closed write sessions of dead clients');
    return pruned;
  }
}
