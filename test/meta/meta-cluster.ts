// A real cluster for meta tests: mgmtd and one storage process (TestCluster, four one-replica
// chains in table 1), plus meta servers over one KV directory, either in this process (to reach
// the GC worker and session pruner directly) or as real daemon processes.
import path from 'node:path';
import { MetaClient, type MetaUser } from '../../daemons/client/meta-client.js';
import { openKvStore, kvConfig, type KvStore } from '../../daemons/common/kv/index.js';
import { metaConfigSchema } from '../../daemons/meta/config.js';
import { MetaServer } from '../../daemons/meta/meta-server.js';
import { type Cadence, type ClusterSpec, quietLog, TestCluster } from '../helpers/cluster.js';
import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.js';

export const GC_DELAY_MS = 300;

/**
 * Fast GC and session pruning at test cadence, so tests see their effects in well under a second.
 * At bench cadence meta keeps its deployed defaults: with a GC delay of 300 ms, the chunks and KV
 * rows of one phase's 20,000 unlinks would be collected while the next phase is being measured,
 * which no deployed cluster (5 minute delay) does.
 */
const FAST_BACKGROUND_WORK = {
  'gc.delayMs': GC_DELAY_MS,
  'gc.intervalMs': 100,
  'gc.claimMs': 2_000,
  'sessions.pruneIntervalMs': 500,
  'sessions.graceMs': 500,
};

export class MetaTestCluster {
  base: TestCluster;
  readonly servers: MetaServer[] = [];
  readonly processes = new Map<number, DaemonProcess>();
  readonly clients: MetaClient[] = [];
  private readonly stores: KvStore[] = [];

  constructor(
    readonly name: string,
    layout: Pick<ClusterSpec, 'storageNodes' | 'chains'> = {
      storageNodes: [101],
      chains: [1, 2, 3, 4].map((chainId) => ({ chainId, nodes: [101] })),
    },
    cadence: Cadence = 'test',
  ) {
    this.base = new TestCluster({ name, ...layout, cadence });
  }

  get kvPath(): string {
    return path.join(this.base.dir, 'meta-kv');
  }

  settings(nodeId: number): Record<string, unknown> {
    return {
      nodeId,
      clusterId: this.name,
      mgmtd: [this.base.mgmtd.ready.address],
      'listen.port': 0,
      'status.port': 0,
      'kv.path': this.kvPath,
      // Routing advertises it; clients found through routing on this host dial it (TCP otherwise).
      localSocket: path.join(this.base.dir, `meta-${nodeId}.sock`),
      // The cluster's cadence (at test cadence mgmtd declares a node failed after 1.5 s of silence).
      heartbeatIntervalMs: this.base.timings.heartbeatMs,
      routingRefreshMs: this.base.timings.routingRefreshMs,
      'rootLayout.stripeSize': 4,
      ...(this.base.cadence === 'test' ? FAST_BACKGROUND_WORK : {}),
    };
  }

  async start(): Promise<void> {
    await this.base.start();
  }

  /** A meta server in this process. */
  async startServer(nodeId: number): Promise<MetaServer> {
    const flat = this.settings(nodeId);
    const nested: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(flat)) {
      const parts = key.split('.');
      let at = nested;
      for (const p of parts.slice(0, -1)) at = (at[p] ??= {}) as Record<string, unknown>;
      at[parts[parts.length - 1]!] = value;
    }
    const config = metaConfigSchema.parse(nested);
    const kv = await openKvStore(kvConfig({ path: this.kvPath }));
    this.stores.push(kv);
    const server = new MetaServer({
      config,
      kv,
      log: quietLog,
      mgmtd: this.base.mgmtdClient,
      routing: this.base.routing,
      chunks: this.base.client,
    });
    await server.start();
    this.servers.push(server);
    return server;
  }

  /** A meta server as a real daemon process. */
  async startProcess(nodeId: number): Promise<DaemonProcess> {
    const args = Object.entries(this.settings(nodeId)).flatMap(([k, v]) => [
      '--set',
      `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`,
    ]);
    const proc = await startDaemon('meta', args);
    this.processes.set(nodeId, proc);
    return proc;
  }

  client(user: MetaUser = { uid: 0, gid: 0 }, addresses?: string[]): MetaClient {
    const client = new MetaClient({
      clusterId: this.name,
      addresses,
      routing: addresses ? undefined : this.base.routing,
      mgmtd: this.base.mgmtdClient,
      sessionKeepaliveMs: 200,
      user,
      attemptTimeoutMs: 2_000,
      totalTimeoutMs: 20_000,
      log: quietLog,
    });
    this.clients.push(client);
    return client;
  }

  async stop(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.close()));
    await Promise.all(this.servers.map((s) => s.stop()));
    await Promise.all([...this.processes.values()].map((p) => p.kill('SIGKILL')));
    await Promise.all(this.stores.map((s) => s.close()));
    await this.base.stop();
  }
}
