// A real cluster on loopback for integration tests: one mgmtd and N storage processes with short
// timings (or a benchmark's quieter ones, see CADENCES), chains created through mgmtd's admin RPCs,
// and a client (routing cache + storage client). Every process is killed by stop().
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { MgmtdClient } from '../../daemons/client/mgmtd-client.js';
import { RoutingCache } from '../../daemons/client/routing-cache.js';
import { StorageClient } from '../../daemons/client/storage-client.js';
import { createLogger } from '../../daemons/common/log.js';
import type { RoutingInfo } from '../../daemons/common/routing.js';
import { MgmtdService } from '../../daemons/common/services/mgmtd.js';
import { type DaemonProcess, startDaemon } from './daemon-process.js';

export const quietLog = createLogger({ role: 'test', level: 'silent' });

/** Test data lives under /work (a real file system, so O_DIRECT works), not a tmpfs /tmp. */
export function testDir(name: string): string {
  const base = path.resolve(process.cwd(), '..', 'threefs-test-data');
  mkdirSync(base, { recursive: true });
  return mkdtempSync(path.join(base, `${name}-`));
}

/**
 * The value of metric `name` on a daemon's status server: its first sample, or the first whose
 * labels include `label` (e.g. 'state="in_use"'); NaN if absent.
 */
export async function metricValue(
  statusUrl: unknown,
  name: string,
  label?: string,
): Promise<number> {
  const text = await (await fetch(`${String(statusUrl)}/metrics`)).text();
  const labels = label === undefined ? '(?:{[^}]*})?' : `{[^}]*${label}[^}]*}`;
  return Number(new RegExp(`^${name}${labels} (\\S+)`, 'm').exec(text)?.[1]);
}

/** How often a cluster's background work runs (heartbeats, routing polls, chain checks). */
export type Cadence = 'test' | 'bench';

export interface CadenceTimings {
  heartbeatMs: number;
  routingRefreshMs: number;
  chainUpdateMs: number;
  failCheckMs: number;
  failAfterMs: number;
  leaseRenewMs: number;
  resyncMs: number;
}

/**
 * Tests want a failure noticed within about a second. A benchmark wants the background as quiet as
 * a deployed cluster's (whose defaults are 10 s heartbeats and routing polls): at test cadence an
 * idle bench cluster (mgmtd, three storage processes, meta, FUSE) spent about 200 ms of CPU per
 * second on heartbeats, polls and checks, a tenth of this 2-core machine taken from what is being
 * measured. The bench cadence is ten times slower and still starts a cluster in seconds.
 */
export const CADENCES: Record<Cadence, CadenceTimings> = {
  test: {
    heartbeatMs: 200,
    routingRefreshMs: 200,
    chainUpdateMs: 100,
    failCheckMs: 200,
    failAfterMs: 1_500,
    leaseRenewMs: 500,
    resyncMs: 100,
  },
  bench: {
    heartbeatMs: 2_000,
    routingRefreshMs: 2_000,
    chainUpdateMs: 1_000,
    failCheckMs: 2_000,
    failAfterMs: 15_000,
    leaseRenewMs: 5_000,
    resyncMs: 500,
  },
};

export interface ClusterSpec {
  name: string;
  storageNodes: number[];
  /** Each chain: its id and the storage node ids of its targets, head first. */
  chains: Array<{ chainId: number; nodes: number[] }>;
  storageArgs?: string[];
  /** 'test' unless given. */
  cadence?: Cadence;
}

export const targetIdOf = (chainId: number, nodeId: number) => chainId * 1000 + nodeId;

export class TestCluster {
  mgmtd!: DaemonProcess;
  readonly storage = new Map<number, DaemonProcess>();
  /** Every storage process started, the killed and replaced ones included (their logs stay). */
  private readonly storageStarted: DaemonProcess[] = [];
  mgmtdClient!: MgmtdClient;
  routing!: RoutingCache;
  client!: StorageClient;
  readonly dir: string;

  constructor(readonly spec: ClusterSpec) {
    this.dir = testDir(spec.name);
  }

  get cadence(): Cadence {
    return this.spec.cadence ?? 'test';
  }

  get timings(): CadenceTimings {
    return CADENCES[this.cadence];
  }

  async start(): Promise<void> {
    const timings = this.timings;
    this.mgmtd = await startDaemon('mgmtd', [
      '--set',
      `clusterId=${this.spec.name}`,
      '--set',
      'listen.port=0',
      '--set',
      'status.port=0',
      '--set',
      `kv.path=${path.join(this.dir, 'kv')}`,
      '--set',
      'bootstrapMs=200',
      '--set',
      `heartbeat.failAfterMs=${timings.failAfterMs}`,
      '--set',
      `heartbeat.checkIntervalMs=${timings.failCheckMs}`,
      '--set',
      `chainUpdateIntervalMs=${timings.chainUpdateMs}`,
      '--set',
      `lease.renewIntervalMs=${timings.leaseRenewMs}`,
    ]);
    this.mgmtdClient = new MgmtdClient({
      addresses: [this.mgmtd.ready.address as string],
      clusterId: this.spec.name,
      log: quietLog,
    });
    await Promise.all(this.spec.storageNodes.map((nodeId) => this.startStorage(nodeId)));
    await this.waitRegistered(this.spec.storageNodes, 15_000);
    await this.mgmtdClient.call(MgmtdService.methods.createTargets, {
      targets: this.spec.chains.flatMap((c) =>
        c.nodes.map((nodeId) => ({
          targetId: targetIdOf(c.chainId, nodeId),
          nodeId,
          diskIndex: 0,
          chainId: c.chainId,
        })),
      ),
    });
    await this.mgmtdClient.call(MgmtdService.methods.setChains, {
      chains: this.spec.chains.map((c) => ({
        chainId: c.chainId,
        targetIds: c.nodes.map((n) => targetIdOf(c.chainId, n)),
      })),
    });
    await this.mgmtdClient.call(MgmtdService.methods.setChainTable, {
      chainTableId: 1,
      chainIds: this.spec.chains.map((c) => c.chainId),
    });
    this.routing = new RoutingCache(this.mgmtdClient, {
      refreshIntervalMs: timings.routingRefreshMs,
      log: quietLog,
    });
    this.routing.start();
    this.client = new StorageClient({
      routing: this.routing,
      clusterId: this.spec.name,
      log: quietLog,
      retryTotalMs: 30_000,
      attemptTimeoutMs: 3_000,
    });
    await this.waitHealthy(30_000);
  }

  async startStorage(nodeId: number): Promise<DaemonProcess> {
    const disk = path.join(this.dir, `storage-${nodeId}`);
    mkdirSync(disk, { recursive: true });
    const timings = this.timings;
    const proc = await startDaemon('storage', [
      '--set',
      `nodeId=${nodeId}`,
      '--set',
      `clusterId=${this.spec.name}`,
      '--set',
      `mgmtd=${JSON.stringify([this.mgmtd.ready.address])}`,
      '--set',
      `disks=${JSON.stringify([disk])}`,
      '--set',
      'listen.port=0',
      '--set',
      'status.port=0',
      '--set',
      `heartbeatIntervalMs=${timings.heartbeatMs}`,
      '--set',
      `routingRefreshMs=${timings.routingRefreshMs}`,
      '--set',
      `resync.intervalMs=${timings.resyncMs}`,
      '--set',
      'engine.filesPerClass=4',
      '--set',
      `localSocket=${path.join(disk, 'local.sock')}`,
      '--set',
      'forward.totalMs=20000',
      ...(this.spec.storageArgs ?? []),
    ]);
    this.storage.set(nodeId, proc);
    this.storageStarted.push(proc);
    return proc;
  }

  /** Log lines whose message is `msg`, from every storage process this cluster started. */
  storageLogged(msg: string): Array<Record<string, unknown>> {
    return this.storageStarted.flatMap((p) => p.lines.filter((l) => l.msg === msg));
  }

  /** Waits until mgmtd knows every given storage node (their first heartbeat registers them). */
  async waitRegistered(nodeIds: number[], timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { body } = await this.mgmtdClient.call(MgmtdService.methods.getRoutingInfo, {
        sinceVersion: 0,
      });
      const known = new Set(
        body.delta?.nodes.filter((n) => n.type === 'STORAGE').map((n) => n.nodeId),
      );
      if (nodeIds.every((id) => known.has(id))) return;
      if (Date.now() > deadline)
        assert.fail(
          `storage nodes ${nodeIds} not registered after ${timeoutMs} ms\n${this.recentProblems()}`,
        );
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async routingInfo(): Promise<RoutingInfo> {
    return this.routing.refresh();
  }

  /** Waits until every chain has every target SERVING and UPTODATE. */
  async waitHealthy(timeoutMs: number): Promise<RoutingInfo> {
    const deadline = Date.now() + timeoutMs;
    let info = await this.routingInfo();
    const healthy = (i: RoutingInfo) =>
      i.chains.length === this.spec.chains.length &&
      i.chains.every((c) => c.targets.every((t) => t.state === 'SERVING')) &&
      i.targets.every((t) => t.localState === 'UPTODATE');
    while (!healthy(info)) {
      if (Date.now() > deadline) {
        assert.fail(
          `cluster not healthy after ${timeoutMs} ms: ${JSON.stringify(info.chains.map((c) => [c.chainId, c.targets]))}\n` +
            this.recentProblems(),
        );
      }
      await new Promise((r) => setTimeout(r, 100));
      info = await this.routingInfo();
    }
    return info;
  }

  /** The last warnings and errors each daemon logged, for failure messages. */
  recentProblems(perProcess = 8): string {
    const procs: Array<[string, DaemonProcess | undefined]> = [
      ['mgmtd', this.mgmtd],
      ...[...this.storage].map(([id, p]): [string, DaemonProcess] => [`storage ${id}`, p]),
    ];
    return procs
      .map(([name, p]) => {
        const lines = (p?.lines ?? [])
          .filter((l) => l.level === 'warn' || l.level === 'error' || l.level === 'fatal')
          .slice(-perProcess);
        const show = (l: Record<string, unknown>) => {
          const { time, level, msg, pid: _pid, role: _role, ...rest } = l;
          return `  ${String(time)} ${String(level)} ${String(msg)} ${JSON.stringify(rest)}`.slice(
            0,
            800,
          );
        };
        return `${name}:\n${lines.map(show).join('\n')}`;
      })
      .join('\n');
  }

  async stop(): Promise<void> {
    this.routing?.stop();
    await this.client?.close();
    await this.mgmtdClient?.close();
    await Promise.all([...this.storage.values()].map((s) => s.kill('SIGKILL')));
    await this.mgmtd?.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}
