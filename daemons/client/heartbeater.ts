// Sends a daemon's heartbeats to the primary mgmtd on a timer, and at once when asked (a target's
// local state changed). Heartbeat versions come from the clock, kept strictly increasing, so they
// stay monotonic across restarts of the process (mgmtd refuses a version it has already seen).
import type { z } from 'zod';
import type { Logger } from '../common/log.js';
import type { NodeType } from '../common/routing.js';
import {
  type HeartbeatRequest,
  MgmtdService,
  type ServiceConfigSchema,
} from '../common/services/mgmtd.js';
import type { MgmtdClient } from './mgmtd-client.js';

type TargetReports = z.input<typeof HeartbeatRequest>['targets'];

export interface HeartbeaterOptions {
  mgmtd: MgmtdClient;
  nodeId: number;
  type: NodeType;
  address: string;
  hostname: string;
  /** "unix:/path" of the node's unix socket listener, for same-host clients ('' for none). */
  localAddress?: string;
  releaseVersion: string;
  intervalMs: number;
  targets?: () => TargetReports;
  onConfig?: (config: z.output<typeof ServiceConfigSchema>) => void;
  log: Logger;
}

export class Heartbeater {
  private lastVersion = 0;
  private configVersion = 0;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private again = false;
  private failures = 0;

  constructor(private readonly options: HeartbeaterOptions) {}

  start(): void {
    this.timer = setInterval(() => void this.beat(), this.options.intervalMs);
    void this.beat();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Sends a heartbeat now; one at a time, a request during one sends one more right after. */
  beat(): Promise<void> {
    if (this.inFlight) {
      this.again = true;
      return this.inFlight;
    }
    this.inFlight = this.send().finally(() => {
      this.inFlight = undefined;
      if (this.again) {
        this.again = false;
        void this.beat();
      }
    });
    return this.inFlight;
  }

  private async send(): Promise<void> {
    const { mgmtd, log } = this.options;
    this.lastVersion = Math.max(this.lastVersion + 1, Date.now());
    try {
      const { body } = await mgmtd.call(
        MgmtdService.methods.heartbeat,
        {
          nodeId: this.options.nodeId,
          type: this.options.type,
          heartbeatVersion: this.lastVersion,
          sentAtMs: Date.now(),
          address: this.options.address,
          hostname: this.options.hostname,
          localAddress: this.options.localAddress ?? '',
          releaseVersion: this.options.releaseVersion,
          configVersion: this.configVersion,
          targets: this.options.targets?.() ?? [],
        },
        { totalTimeoutMs: Math.max(1_000, this.options.intervalMs) },
      );
      if (this.failures > 0) log.info({ failures: this.failures }, 'heartbeats reach mgmtd again');
      this.failures = 0;
      if (body.config && body.config.version > this.configVersion) {
        this.configVersion = body.config.version;
        this.options.onConfig?.(body.config);
      }
    } catch (err) {
      this.failures++;
      if (this.failures === 1 || this.failures % 10 === 0)
        log.warn({ err, failures: this.failures }, 'heartbeat failed');
    }
  }
}
