// A process's copy of the routing info: refreshed on a timer (brief: every 10 s) and on demand,
// for instance when a storage call reports a chain version mismatch. Refreshes are coalesced: at
// most one request is in flight, and callers asking meanwhile share its result.
import { ThreeFsError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { applyRoutingDelta, emptyRoutingInfo, type RoutingInfo } from '../common/routing.js';
import { MgmtdService } from '../common/services/mgmtd.js';
import type { MgmtdClient } from './mgmtd-client.js';

export interface RoutingCacheOptions {
  refreshIntervalMs?: number;
  log?: Logger;
}

export class RoutingCache {
  private info: RoutingInfo = emptyRoutingInfo();
  private inFlight: Promise<RoutingInfo> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners = new Set<(info: RoutingInfo) => void>();

  constructor(
    private readonly mgmtd: MgmtdClient,
    private readonly options: RoutingCacheOptions = {},
  ) {}

  get current(): RoutingInfo {
    return this.info;
  }

  /** Fetches what changed since the local version; concurrent callers share one request. */
  refresh(): Promise<RoutingInfo> {
    if (!this.inFlight) {
      this.inFlight = this.fetch().finally(() => {
        this.inFlight = undefined;
      });
    }
    return this.inFlight;
  }

  /** Refreshes until the routing version reaches `version` or the time runs out. */
  async waitForVersion(version: number, timeoutMs: number): Promise<RoutingInfo> {
    const deadline = Date.now() + timeoutMs;
    while (this.info.routingVersion < version) {
      if (Date.now() >= deadline)
        throw new ThreeFsError('DEADLINE_EXCEEDED', `routing version ${version} not reached`);
      await this.refresh();
      if (this.info.routingVersion < version) await new Promise((r) => setTimeout(r, 50));
    }
    return this.info;
  }

  onChange(listener: (info: RoutingInfo) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  start(): void {
    const interval = this.options.refreshIntervalMs ?? 10_000;
    this.timer = setInterval(() => {
      this.refresh().catch((err: unknown) =>
        this.options.log?.warn({ err }, 'routing refresh failed'),
      );
    }, interval);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async fetch(): Promise<RoutingInfo> {
    const { body } = await this.mgmtd.call(MgmtdService.methods.getRoutingInfo, {
      sinceVersion: this.info.routingVersion,
    });
    if (!body.delta) return this.info;
    let next: RoutingInfo;
    try {
      next = applyRoutingDelta(this.info, body.delta);
    } catch (err) {
      if (!(err instanceof ThreeFsError) || err.code !== 'ROUTING_VERSION_MISMATCH') throw err;
      const full = await this.mgmtd.call(MgmtdService.methods.getRoutingInfo, { sinceVersion: 0 });
      if (!full.body.delta) return this.info;
      next = applyRoutingDelta(emptyRoutingInfo(), full.body.delta);
    }
    const changed = next.routingVersion !== this.info.routingVersion;
    this.info = next;
    if (changed) for (const listener of this.listeners) listener(next);
    return next;
  }
}
