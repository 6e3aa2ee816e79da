// `threefs local up|down|status`: a whole cluster on this machine — mgmtd, meta on the embedded KV
// store, three storage processes with file-backed targets, chains of three from the placement
// generator, and the FUSE mount. State (configs, data, logs, pids) lives in one data directory, so
// a second `up` brings the same data back, or, when only some processes stopped, restarts those.
import { spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  opendirSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { stringify as toToml } from 'smol-toml';
import { z } from 'zod';
import { MgmtdClient } from '../client/mgmtd-client.js';
import { ThreeFsError } from '../common/errors.js';
import { createLogger } from '../common/log.js';
import { packageRoot } from '../common/native.js';
import {
  applyRoutingDelta,
  emptyRoutingInfo,
  type RoutingInfo,
  type TargetInfo,
} from '../common/routing.js';
import { MgmtdService } from '../common/services/mgmtd.js';
import { generatePlacement } from '../mgmtd/placement.js';
import { UsageError } from './command.js';

export const LocalFlags = z.object({
  data: z.string().min(1).default('./.threefs').describe('data directory (configs, data, logs)'),
  mount: z.string().min(1).default('./mnt').describe('mount point'),
  portBase: z
    .number()
    .int()
    .min(1024)
    .max(65_000)
    .default(9000)
    .describe('first of the ports used'),
  json: z.boolean().default(false).describe('print JSON (status)'),
});
export type LocalFlags = z.output<typeof LocalFlags>;

/** A unix socket path for a daemon's same-host clients; '' when the data directory's path would
 * make it longer than a socket address allows (they then use TCP only). */
function localSocketPath(dataDir: string, name: string): string {
  const socket = path.join(dataDir, name, 'local.sock');
  return socket.length <= 100 ? socket : '';
}

type Role = 'mgmtd' | 'meta' | 'storage' | 'fuse';

interface ProcessRecord {
  role: Role;
  name: string;
  pid: number;
  endpoint: string;
  status: string;
  log: string;
  config: string;
}

interface ClusterRecord {
  clusterId: string;
  dataDir: string;
  mountDir: string;
  startedAt: string;
  processes: ProcessRecord[];
}

const STORAGE_NODES = [10001, 10002, 10003];
/** How long `up` waits for every chain to serve (a restarted storage node re-syncs first). */
const CHAINS_HEALTHY_MS = 90_000;
/** How often that wait reports re-sync progress. */
const SYNC_REPORT_MS = 3_000;
const CLUSTER_ID = 'local';
const quiet = createLogger({ role: 'cli', level: 'silent' });

/**
 * Whether the recorded daemon still runs: its pid is alive and its command line names the record's
 * config file. A pid alone is not enough: after a crash or a reboot the same pid may belong to an
 * unrelated process, which `down` must never signal and `up` must not take for our daemon. (A
 * zombie's command line is empty, so a dead daemon nobody reaped does not count either.)
 */
function isRunning(p: ProcessRecord): boolean {
  try {
    process.kill(p.pid, 0);
  } catch {
    return false;
  }
  try {
    return readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').split('\0').includes(p.config);
  } catch {
    return false;
  }
}

/** Processes are started in this order, and stopped in the reverse. */
const START_ORDER: readonly Role[] = ['mgmtd', 'storage', 'meta', 'fuse'];

/**
 * 'mounted', 'stale' (its FUSE daemon died: "transport endpoint is not connected") or 'not
 * mounted'. Opens the directory, which the kernel must ask the daemon for (a stat may come from
 * its attribute cache), without listing it: the mount's root may hold any number of names.
 */
function mountState(mountDir: string): 'mounted' | 'stale' | 'not mounted' {
  try {
    opendirSync(mountDir).closeSync();
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOTCONN' ? 'stale' : 'not mounted';
  }
  return spawnSync('mountpoint', ['-q', mountDir]).status === 0 ? 'mounted' : 'not mounted';
}

/** Clears the mount a dead FUSE daemon left behind; a live mount or a plain directory stays. */
function clearStaleMount(mountDir: string): void {
  if (mountState(mountDir) === 'stale')
    spawnSync('fusermount3', ['-u', '-q', mountDir], { stdio: 'ignore' });
}

function stateFile(dataDir: string): string {
  return path.join(dataDir, 'cluster.json');
}

function saveState(record: ClusterRecord): void {
  writeFileSync(stateFile(record.dataDir), `${JSON.stringify(record, null, 2)}\n`);
}

/** What `up` prints: where the file system is, each process, and how to stop it. */
function upResult(record: ClusterRecord, flags: LocalFlags) {
  return {
    mount: record.mountDir,
    dataDir: record.dataDir,
    processes: record.processes.map((p) => ({
      name: p.name,
      pid: p.pid,
      endpoint: p.endpoint,
      status: p.status,
    })),
    next: `use the file system at ${record.mountDir}; stop it with: threefs local down --data ${flags.data}`,
  };
}

function readState(dataDir: string): ClusterRecord | undefined {
  try {
    return JSON.parse(readFileSync(stateFile(dataDir), 'utf8')) as ClusterRecord;
  } catch {
    return undefined;
  }
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

function say(message: string): void {
  process.stderr.write(`${message}\n`);
}

/** Waits for "<role> ready" in a daemon's log, written after `fromOffset`; explains a failure. */
async function waitReady(
  record: ProcessRecord,
  fromOffset: number,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const text = readFileSync(record.log, 'utf8').slice(fromOffset);
    for (const line of text.split('\n')) {
      if (line.includes(`"msg":"${record.role} ready"`)) return;
    }
    if (!isRunning(record)) {
      const tail = text.split('\n').filter(Boolean).slice(-8).join('\n');
      throw new ThreeFsError(
        'UNAVAILABLE',
        `${record.name} exited during startup; its log (${record.log}) ends with:\n${tail}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new ThreeFsError(
    'DEADLINE_EXCEEDED',
    `${record.name} did not become ready within ${timeoutMs / 1000} s; see ${record.log}`,
  );
}

/** Writes a daemon's config under the data directory and starts it (see spawnDaemon). */
function startProcess(
  dataDir: string,
  role: Role,
  name: string,
  config: Record<string, unknown>,
  endpoint: string,
  status: string,
): { record: ProcessRecord; offset: number } {
  const configDir = path.join(dataDir, 'config');
  const logDir = path.join(dataDir, 'logs');
  mkdirSync(configDir, { recursive: true });
  mkdirSync(logDir, { recursive: true });
  const configFile = path.join(configDir, `${name}.toml`);
  writeFileSync(configFile, toToml(config));
  const record = {
    role,
    name,
    pid: 0,
    endpoint,
    status,
    log: path.join(logDir, `${name}.log`),
    config: configFile,
  };
  return { record, offset: spawnDaemon(record) };
}

/**
 * Starts the daemon a record describes, from its config file, logging to its log; sets the
 * record's pid and returns the log's length before the start (where waitReady looks from).
 */
function spawnDaemon(record: ProcessRecord): number {
  const offset = existsSync(record.log) ? statSync(record.log).size : 0;
  const script = path.join(packageRoot, 'dist', 'daemons', record.role, 'main.js');
  if (!existsSync(script))
    throw new ThreeFsError('FAILED_PRECONDITION', `${script} is missing: run npm run build`);
  const fd = openSync(record.log, 'a');
  // The command line names the role (the script path) and the data directory (the config path),
  // so `ps` shows what each process is.
  const child = spawn(process.execPath, [script, '--config', record.config], {
    detached: true,
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  child.unref();
  if (child.pid === undefined) throw new ThreeFsError('INTERNAL', `could not start ${record.name}`);
  record.pid = child.pid;
  return offset;
}

async function routingOf(client: MgmtdClient): Promise<RoutingInfo> {
  const { body } = await client.call(MgmtdService.methods.getRoutingInfo, { sinceVersion: 0 });
  return body.delta ? applyRoutingDelta(emptyRoutingInfo(), body.delta) : emptyRoutingInfo();
}

function chainHealth(info: RoutingInfo) {
  const chains = info.chains.map((c) => {
    const serving = c.targets.filter((t) => t.state === 'SERVING').length;
    return serving === c.targets.length ? 'healthy' : serving > 0 ? 'degraded' : 'unavailable';
  });
  return {
    healthy: chains.filter((c) => c === 'healthy').length,
    degraded: chains.filter((c) => c === 'degraded').length,
    unavailable: chains.filter((c) => c === 'unavailable').length,
    total: chains.length,
  };
}

export async function localUp(flags: LocalFlags): Promise<{ value: unknown }> {
  const dataDir = path.resolve(flags.data);
  const mountDir = path.resolve(flags.mount);
  const previous = readState(dataDir);
  if (previous) {
    const running = previous.processes.filter(isRunning);
    if (running.length > 0 && running.length === previous.processes.length) {
      throw new UsageError(
        `a cluster from ${dataDir} is still running (${running.map((p) => `${p.name} pid ${p.pid}`).join(', ')}); run: threefs local down --data ${flags.data}`,
      );
    }
    if (running.length > 0) return restartStopped(previous, flags);
    // Everything is gone, but a FUSE daemon that died may have left its mount behind.
    clearStaleMount(previous.mountDir);
  }
  if (!existsSync('/dev/fuse'))
    throw new UsageError(
      'FUSE is unavailable: /dev/fuse is missing (load the fuse module; install fuse3)',
    );
  if (existsSync(mountDir) && readdirSync(mountDir).length > 0) {
    throw new UsageError(`the mount point ${mountDir} is not empty`);
  }
  const base = flags.portBase;
  const ports = {
    mgmtd: base,
    meta: base + 1,
    storage: STORAGE_NODES.map((_, i) => base + 10 + i),
    status: base + 100,
  };
  for (const port of [
    ports.mgmtd,
    ports.meta,
    ...ports.storage,
    ...[0, 1, 2, 3, 4, 5].map((i) => ports.status + i),
  ]) {
    if (!(await portFree(port)))
      throw new UsageError(
        `port ${port} on 127.0.0.1 is taken; stop what uses it or pass --port-base`,
      );
  }
  mkdirSync(dataDir, { recursive: true });
  mkdirSync(mountDir, { recursive: true });
  const record: ClusterRecord = {
    clusterId: CLUSTER_ID,
    dataDir,
    mountDir,
    startedAt: new Date().toISOString(),
    processes: [],
  };
  const mgmtdAddress = `127.0.0.1:${ports.mgmtd}`;
  const kvPath = path.join(dataDir, 'kv');

  const launch = async (
    role: Role,
    name: string,
    config: Record<string, unknown>,
    endpoint: string,
    statusPort: number,
  ) => {
    say(`starting ${name}...`);
    const { record: proc, offset } = startProcess(
      dataDir,
      role,
      name,
      config,
      endpoint,
      `http://127.0.0.1:${statusPort}`,
    );
    record.processes.push(proc);
    saveState(record);
    await waitReady(proc, offset, 60_000);
  };

  try {
    await launch(
      'mgmtd',
      'mgmtd',
      {
        nodeId: 1,
        clusterId: CLUSTER_ID,
        listen: { port: ports.mgmtd },
        status: { port: ports.status },
        kv: { path: kvPath },
        bootstrapMs: 3_000,
        heartbeat: { failAfterMs: 6_000, checkIntervalMs: 1_000 },
        chainUpdateIntervalMs: 500,
      },
      mgmtdAddress,
      ports.status,
    );
    await Promise.all(
      STORAGE_NODES.map((nodeId, i) =>
        launch(
          'storage',
          `storage-${i + 1}`,
          {
            nodeId,
            clusterId: CLUSTER_ID,
            mgmtd: [mgmtdAddress],
            disks: [path.join(dataDir, `storage-${i + 1}`, 'disk0')],
            listen: { port: ports.storage[i] },
            localSocket: localSocketPath(dataDir, `storage-${i + 1}`),
            status: { port: ports.status + 2 + i },
            heartbeatIntervalMs: 1_000,
            routingRefreshMs: 1_000,
            engine: { filesPerClass: 8 },
          },
          `127.0.0.1:${ports.storage[i]}`,
          ports.status + 2 + i,
        ),
      ),
    );
    const client = new MgmtdClient({
      addresses: [mgmtdAddress],
      clusterId: CLUSTER_ID,
      log: quiet,
    });
    try {
      let info = await routingOf(client);
      for (
        let i = 0;
        i < 100 && STORAGE_NODES.some((id) => !info.nodes.some((n) => n.nodeId === id));
        i++
      ) {
        await new Promise((r) => setTimeout(r, 100));
        info = await routingOf(client);
      }
      if (info.chains.length === 0) {
        say('creating targets and chains (3 storage nodes, chains of 3)...');
        const placement = generatePlacement({
          nodeIds: STORAGE_NODES,
          disksPerNode: 1,
          targetsPerDisk: 4,
          replication: 3,
        });
        await client.call(MgmtdService.methods.createTargets, { targets: placement.targets });
        await client.call(MgmtdService.methods.setChains, { chains: placement.chains });
        await client.call(MgmtdService.methods.setChainTable, placement.chainTable);
      }
      await launch(
        'meta',
        'meta',
        {
          nodeId: 50,
          clusterId: CLUSTER_ID,
          mgmtd: [mgmtdAddress],
          listen: { port: ports.meta },
          localSocket: localSocketPath(dataDir, 'meta'),
          status: { port: ports.status + 1 },
          kv: { path: kvPath },
          heartbeatIntervalMs: 1_000,
          routingRefreshMs: 1_000,
        },
        `127.0.0.1:${ports.meta}`,
        ports.status + 1,
      );
      if (!(await waitForChains(client, 'healthy')))
        throw new ThreeFsError(
          'DEADLINE_EXCEEDED',
          `chains not healthy after ${CHAINS_HEALTHY_MS / 1000} s: ${JSON.stringify(chainHealth(await routingOf(client)))}`,
        );
    } finally {
      await client.close();
    }
    say(`mounting at ${mountDir}...`);
    await launch(
      'fuse',
      'fuse',
      fuseConfig(mgmtdAddress, mountDir, ports.status + 5),
      mountDir,
      ports.status + 5,
    );
  } catch (err) {
    say('startup failed; stopping what was started');
    await stopAll(record);
    saveState(record);
    throw err;
  }
  return { value: { ...upResult(record, flags), mgmtd: mgmtdAddress } };
}

/**
 * Polls routing until the chains reach `goal` — 'serving': every chain has a serving replica (the
 * file system is usable); 'healthy': every target is up to date, every chain serves from all its
 * replicas, and each chain in `mustPass` is past the version given (see chainsOf) — reporting
 * re-sync progress meanwhile. False if the goal was not reached within CHAINS_HEALTHY_MS.
 */
async function waitForChains(
  client: MgmtdClient,
  goal: 'serving' | 'healthy',
  mustPass: ReadonlyMap<number, number> = new Map(),
): Promise<boolean> {
  say(goal === 'healthy' ? 'waiting for every chain to serve...' : 'waiting for the chains...');
  const deadline = Date.now() + CHAINS_HEALTHY_MS;
  let reportedAt = Date.now();
  for (;;) {
    const info = await routingOf(client);
    const health = chainHealth(info);
    const reached =
      goal === 'serving'
        ? health.total > 0 && health.unavailable === 0
        : !info.bootstrapping &&
          info.targets.every((t) => t.localState === 'UPTODATE') &&
          [...mustPass].every(
            ([chainId, version]) =>
              (info.chains.find((c) => c.chainId === chainId)?.chainVersion ?? 0) > version,
          ) &&
          health.total > 0 &&
          health.healthy === health.total;
    if (reached) return true;
    if (Date.now() > deadline) return false;
    if (Date.now() - reportedAt >= SYNC_REPORT_MS) {
      reportedAt = Date.now();
      const syncing = info.targets.flatMap((t) => (t.syncProgress ? [t.syncProgress] : []));
      if (syncing.length > 0) say(`re-syncing ${describeSync(syncing)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** "2 targets: 120/400 chunks, 30/100 MiB". */
function describeSync(progress: ReadonlyArray<NonNullable<TargetInfo['syncProgress']>>): string {
  const sum = (pick: (p: (typeof progress)[number]) => number) =>
    progress.reduce((total, p) => total + pick(p), 0);
  const mib = (bytes: number) => Math.round(bytes / 2 ** 20);
  return (
    `${progress.length} target${progress.length === 1 ? '' : 's'}: ` +
    `${sum((p) => p.chunksDone)}/${sum((p) => p.chunksTotal)} chunks, ` +
    `${mib(sum((p) => p.bytesDone))}/${mib(sum((p) => p.bytesTotal))} MiB`
  );
}

/**
 * The current version of every chain with a target on one of `nodes` (storage records). A storage
 * node that restarts reports its targets offline until mgmtd has demoted them, so each of those
 * chains changes version before it is whole again; until then mgmtd may not even have noticed
 * that the node died, and the chains would look healthy while they are not.
 */
async function chainsOf(
  client: MgmtdClient,
  nodes: readonly ProcessRecord[],
): Promise<Map<number, number>> {
  const info = await routingOf(client);
  const nodeIds = new Set(
    info.nodes.filter((n) => nodes.some((p) => p.endpoint === n.address)).map((n) => n.nodeId),
  );
  const onNodes = new Set(info.targets.filter((t) => nodeIds.has(t.nodeId)).map((t) => t.targetId));
  return new Map(
    info.chains
      .filter((c) => c.targets.some((t) => onNodes.has(t.targetId)))
      .map((c) => [c.chainId, c.chainVersion]),
  );
}

/**
 * `up` when some of the cluster's processes still run and others have stopped (a crash, a kill):
 * starts the stopped ones again from their configs, in start order (the FUSE daemon once every
 * chain serves, after clearing its dead mount), then waits for the chains to be whole again
 * (restarted storage re-syncs first). A re-sync longer than that wait goes on in the background:
 * `up` says so and returns, since degraded chains serve. A failure stops nothing: the processes
 * that ran keep running.
 */
async function restartStopped(record: ClusterRecord, flags: LocalFlags) {
  const stopped = record.processes.filter((p) => !isRunning(p));
  say(`restarting ${stopped.map((p) => p.name).join(', ')} of the cluster in ${record.dataDir}...`);
  const mgmtd = record.processes.find((p) => p.role === 'mgmtd');
  const client = new MgmtdClient({
    addresses: mgmtd ? [mgmtd.endpoint] : [],
    clusterId: record.clusterId,
    log: quiet,
  });
  let healthy = false;
  try {
    let mustPass = new Map<number, number>();
    for (const role of START_ORDER) {
      const group = stopped.filter((p) => p.role === role);
      if (group.length === 0) continue;
      if (role === 'storage') mustPass = await chainsOf(client, group);
      if (role === 'fuse') {
        if (!(await waitForChains(client, 'serving')))
          throw new ThreeFsError(
            'DEADLINE_EXCEEDED',
            `some chain has no serving replica after ${CHAINS_HEALTHY_MS / 1000} s; see threefs local status`,
          );
        clearStaleMount(record.mountDir);
        say(`mounting at ${record.mountDir}...`);
      }
      await Promise.all(
        group.map(async (p) => {
          if (role !== 'fuse') say(`starting ${p.name}...`);
          const offset = spawnDaemon(p);
          saveState(record);
          await waitReady(p, offset, 60_000);
        }),
      );
    }
    healthy = await waitForChains(client, 'healthy', mustPass);
    if (!healthy) say('re-sync goes on in the background; threefs local status shows the chains');
  } finally {
    await client.close();
  }
  return {
    value: {
      ...upResult(record, flags),
      restarted: stopped.map((p) => p.name),
      chainsHealthy: healthy,
    },
  };
}

/** The FUSE daemon's config (keys of daemons/fuse/config.ts). */
function fuseConfig(
  mgmtdAddress: string,
  mountDir: string,
  statusPort: number,
): Record<string, unknown> {
  return {
    clusterId: CLUSTER_ID,
    mgmtd: [mgmtdAddress],
    mountpoint: mountDir,
    status: { port: statusPort },
  };
}

async function stopAll(record: ClusterRecord): Promise<string[]> {
  const stopped: string[] = [];
  for (const role of [...START_ORDER].reverse()) {
    const procs = record.processes.filter((p) => p.role === role && isRunning(p));
    for (const p of procs) process.kill(p.pid, 'SIGTERM');
    const deadline = Date.now() + 15_000;
    while (procs.some(isRunning) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    for (const p of procs) {
      if (isRunning(p)) process.kill(p.pid, 'SIGKILL');
      stopped.push(p.name);
    }
  }
  return stopped;
}

export async function localDown(flags: LocalFlags): Promise<{ value: unknown }> {
  const dataDir = path.resolve(flags.data);
  const record = readState(dataDir);
  if (!record) throw new UsageError(`no local cluster state in ${dataDir}`);
  const stopped = await stopAll(record);
  // A mount whose daemon died leaves "transport endpoint is not connected": clear it.
  spawnSync('fusermount3', ['-u', '-q', record.mountDir], { stdio: 'ignore' });
  return { value: { stopped, dataDir } };
}

export async function localStatus(
  flags: LocalFlags,
): Promise<{ value?: unknown; rows?: Array<Record<string, unknown>> }> {
  const dataDir = path.resolve(flags.data);
  const record = readState(dataDir);
  if (!record) throw new UsageError(`no local cluster state in ${dataDir}`);
  const processes = record.processes.map((p) => ({
    role: p.role,
    name: p.name,
    pid: p.pid,
    alive: isRunning(p),
    endpoint: p.endpoint,
  }));
  const mgmtd = record.processes.find((p) => p.role === 'mgmtd');
  let chains: unknown = 'mgmtd unreachable';
  if (mgmtd && isRunning(mgmtd)) {
    const client = new MgmtdClient({
      addresses: [mgmtd.endpoint],
      clusterId: record.clusterId,
      log: quiet,
      totalTimeoutMs: 3_000,
    });
    try {
      chains = chainHealth(await routingOf(client));
    } catch (err) {
      chains = `mgmtd unreachable: ${(err as Error).message}`;
    } finally {
      await client.close();
    }
  }
  const mount = { path: record.mountDir, state: mountState(record.mountDir) };
  if (flags.json) return { value: { dataDir, mount, processes, chains } };
  return {
    rows: [
      ...processes.map((p) => ({ ...p })),
      { role: 'mount', name: `${mount.path} (${mount.state})` },
      { role: 'chains', name: typeof chains === 'string' ? chains : JSON.stringify(chains) },
    ],
  };
}
