// A whole chain in one process under virtual time: storage nodes running the real CraqUpdates,
// ChunkQueries and ResyncWorker over simulated disks, a network that validates every message with
// the real zod schemas, a mgmtd model running the real chain state machine with a configurable
// failure-detector delay, and clients that write and read one chunk. Everything random comes from
// one seed, so a failing seed replays exactly.
import type { z } from 'zod';
import { Registry } from 'prom-client';
import { crc32c } from '../../../daemons/common/crc32c.js';
import { ThreeFsError } from '../../../daemons/common/errors.js';
import { chunkId } from '../../../daemons/common/layout.js';
import { createLogger } from '../../../daemons/common/log.js';
import type { RoutingInfo } from '../../../daemons/common/routing.js';
import type { Method } from '../../../daemons/common/rpc/index.js';
import { StorageService } from '../../../daemons/common/services/storage.js';
import type { LocalTargetState } from '../../../daemons/common/target-states.js';
import { offlineTarget } from '../../../daemons/mgmtd/chain-admin.js';
import { type Chain, updateChain } from '../../../daemons/mgmtd/chain-state-machine.js';
import { ChunkQueries } from '../../../daemons/storage/chunk-queries.js';
import { CraqUpdates } from '../../../daemons/storage/craq-updates.js';
import { nextLocalTarget, startingTarget } from '../../../daemons/storage/local-state.js';
import { ResyncWorker } from '../../../daemons/storage/resync.js';
import type { PeerPool } from '../../../daemons/storage/seams.js';
import type { HeldTarget } from '../../../daemons/storage/target-registry.js';
import { type TargetRole, targetRoles } from '../../../daemons/storage/target-roles.js';
import { Rng } from '../../helpers/rng.js';
import { Scheduler } from './scheduler.js';
import { SimChunkStore, SimDisk } from './sim-chunk-store.js';

export interface SimSpec {
  seed: number;
  chainLength: number;
  clients: number;
  /** mgmtd declares a silent target OFFLINE after this long (the failure detector's delay). */
  detectorMs: number;
  opsPerClient: number;
  /** Faults injected: a crash and reboot, or a pause (see SimNode.pause), chosen at random. */
  maxFaults: number;
}

const CHAIN_ID = 1;
const CHUNK = chunkId(7, 0);
const CHUNK_SIZE = 64 * 1024;
let silent = createLogger({ role: 'sim', level: 'silent' });

interface Endpoint {
  alive: boolean;
  incarnation: number;
  /** Until this virtual time nothing reaches it or leaves it (SimNode.pause); clients: never. */
  pausedUntil?: number;
}

class SimNetwork {
  readonly nodes = new Map<string, SimNode>();
  constructor(
    private readonly sched: Scheduler,
    private readonly bugs: string[],
  ) {}

  private delay(): number {
    return this.sched.rng.int(1, 4);
  }

  /**
   * Runs `fn` after a network delay, or once both ends are out of a pause: a paused process's
   * socket buffers hold what was sent, and it answers when it runs again.
   */
  private after(a: Endpoint, b: Endpoint | undefined, fn: () => void): void {
    const sched = this.sched;
    const hold = () => {
      const until = Math.max(a.pausedUntil ?? 0, b?.pausedUntil ?? 0);
      if (until > sched.now()) sched.at(until, hold);
      else fn();
    };
    sched.at(sched.now() + this.delay(), hold);
  }

  /** A typed RPC from one incarnation of an endpoint; replies to a dead incarnation are dropped. */
  call<Req extends z.ZodType, Res extends z.ZodType>(
    from: Endpoint,
    incarnation: number,
    to: string,
    method: Method<Req, Res>,
    body: z.input<Req>,
    options: { payload?: Buffer | undefined; timeoutMs?: number } = {},
  ): Promise<{ body: z.output<Res>; payload?: Buffer | undefined }> {
    const sched = this.sched;
    if (!from.alive || from.incarnation !== incarnation) return new Promise(() => undefined);
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (fn: () => void) => {
        if (settled || !from.alive || from.incarnation !== incarnation) return;
        settled = true;
        fn();
      };
      sched.at(sched.now() + (options.timeoutMs ?? 1_000), () =>
        settle(() => reject(new ThreeFsError('DEADLINE_EXCEEDED', 'sim: timed out'))),
      );
      this.after(from, this.nodes.get(to), () => {
        const node = this.nodes.get(to);
        if (!node || !node.alive) {
          sched.at(sched.now() + 1, () =>
            settle(() => reject(new ThreeFsError('UNAVAILABLE', `sim: ${to} refused`))),
          );
          return;
        }
        const served = node.incarnation;
        const answer = (fn: () => void) =>
          this.after(node, from, () => node.incarnation === served && node.alive && settle(fn));
        let request: unknown;
        try {
          request = method.request.parse(body);
        } catch (err) {
          this.bugs.push(`${method.name}: request failed validation: ${(err as Error).message}`);
          answer(() => reject(new ThreeFsError('INVALID_ARGUMENT', 'sim: bad request')));
          return;
        }
        node.serve(method.name, request, options.payload).then(
          (reply) =>
            answer(() =>
              resolve({
                body: method.response.parse(reply.body) as z.output<Res>,
                payload: reply.payload,
              }),
            ),
          (err: unknown) => {
            if (!(err instanceof ThreeFsError))
              this.bugs.push(`${method.name} on ${to}: ${(err as Error).stack ?? String(err)}`);
            answer(() =>
              reject(err instanceof ThreeFsError ? err : new ThreeFsError('INTERNAL', String(err))),
            );
          },
        );
      });
    });
  }
}

/** The mgmtd model: the real chain state machine fed by heartbeats seen through the detector delay. */
class SimMgmtd {
  chain: Chain;
  version = 1;
  /** Successors re-sync took offline for an inconsistency (none is real: nothing corrupts data). */
  inconsistencies = 0;
  private readonly reports = new Map<number, { state: LocalTargetState; at: number }>();

  constructor(
    private readonly sched: Scheduler,
    private readonly nodes: readonly SimNode[],
    private readonly detectorMs: number,
  ) {
    this.chain = {
      chainId: CHAIN_ID,
      chainVersion: 1,
      targets: nodes.map((n) => ({ targetId: n.targetId, state: 'SERVING' as const })),
    };
  }

  report(targetId: number, state: LocalTargetState): void {
    this.reports.set(targetId, { state, at: this.sched.now() });
  }

  tick(): void {
    const local = new Map<number, LocalTargetState>();
    for (const [targetId, r] of this.reports)
      if (this.sched.now() - r.at <= this.detectorMs) local.set(targetId, r.state);
    const next = updateChain(this.chain, local);
    if (next !== this.chain) {
      this.chain = next;
      this.version++;
    }
  }

  forceOffline(targetId: number): void {
    this.inconsistencies++;
    try {
      this.chain = offlineTarget(this.chain, targetId);
      this.version++;
    } catch {
      /* refused (e.g. the last SERVING target): nothing changes */
    }
  }

  routing(): RoutingInfo {
    return {
      routingVersion: this.version,
      bootstrapping: false,
      nodes: this.nodes.map((n) => ({
        nodeId: n.nodeId,
        type: 'STORAGE' as const,
        status: 'HEARTBEAT_CONNECTED' as const,
        address: n.address,
        hostname: '',
        localAddress: '',
        releaseVersion: '',
        tags: [],
        lastHeartbeatMs: 0,
        changedAt: 1,
      })),
      targets: this.nodes.map((n) => ({
        targetId: n.targetId,
        nodeId: n.nodeId,
        diskIndex: 0,
        chainId: CHAIN_ID,
        localState: 'UPTODATE' as const,
        usedBytes: 0,
        lowSpace: false,
        changedAt: 1,
      })),
      chains: [
        {
          ...this.chain,
          targets: [...this.chain.targets],
          preferredOrder: [],
          changedAt: this.version,
        },
      ],
      chainTables: [],
    };
  }
}

class SimNode implements Endpoint {
  alive = false;
  incarnation = 0;
  pausedUntil = 0;
  readonly disk = new SimDisk();
  readonly address: string;
  readonly targetId: number;
  private held!: HeldTarget;
  private roles: ReadonlyMap<number, TargetRole> = new Map();
  private craq!: CraqUpdates;
  private queries!: ChunkQueries;
  resync!: ResyncWorker;
  mgmtd!: SimMgmtd;

  constructor(
    readonly nodeId: number,
    private readonly sched: Scheduler,
    private readonly net: SimNetwork,
  ) {
    this.address = `sim-${nodeId}`;
    this.targetId = 100 + nodeId;
  }

  boot(): void {
    this.incarnation++;
    this.alive = true;
    const incarnation = this.incarnation;
    const store = new SimChunkStore(this.disk, this.sched);
    this.held = {
      clusterId: 'sim',
      targetId: this.targetId,
      chainId: CHAIN_ID,
      nodeId: this.nodeId,
      diskIndex: 0,
      store,
      state: startingTarget,
    };
    const peers: PeerPool = {
      get: (address) => ({
        call: (method, body, opts) => this.net.call(this, incarnation, address, method, body, opts),
      }),
    };
    const roles = () => this.roles;
    this.craq = new CraqUpdates({
      registry: { byChainId: (id) => (id === CHAIN_ID ? this.held : undefined) },
      roles,
      refreshRouting: async () => this.refresh(),
      peers,
      forward: { initialBackoffMs: 10, maxBackoffMs: 100, totalMs: 3_000, timeoutMs: 300 },
      log: silent,
      maxConcurrentUpdates: 256,
      clock: this.sched,
    });
    this.queries = new ChunkQueries(
      { byChainId: (id: number) => (id === CHAIN_ID ? this.held : undefined) },
      roles,
    );
    this.resync = new ResyncWorker({
      nodeId: this.nodeId,
      registry: { all: [this.held] },
      roles,
      peers,
      craq: this.craq,
      offlineTarget: async (_chain, targetId) => this.mgmtd.forceOffline(targetId),
      log: silent,
      metrics: new Registry(),
      options: { intervalMs: 50, concurrency: 4, pageSize: 64, retryAfterMs: 200 },
      clock: this.sched,
    });
    this.refresh();
  }

  crash(): void {
    this.alive = false;
    (this.held.store as SimChunkStore).crashed = true;
  }

  get state() {
    return this.held.state;
  }

  /**
   * A stopped process (SIGSTOP, a VM pause, a long GC) or a partition that heals: no heartbeats,
   * no routing polls, no re-sync ticks, and messages either way wait in the sockets until it runs
   * again with the routing it had, which mgmtd has meanwhile moved on from.
   */
  pause(ms: number): void {
    this.pausedUntil = this.sched.now() + ms;
  }

  private get running(): boolean {
    return this.alive && this.sched.now() >= this.pausedUntil;
  }

  tickResync(): void {
    if (this.running) this.resync.tick();
  }

  refresh(): void {
    if (!this.running) return;
    this.roles = targetRoles(this.mgmtd.routing(), this.nodeId);
    this.held.state = nextLocalTarget(this.held.state, {
      kind: 'routing',
      publicState: this.roles.get(this.targetId)?.state,
    });
  }

  heartbeat(): void {
    if (this.running) this.mgmtd.report(this.targetId, this.held.state.local);
  }

  committed(): { version: number; content: Buffer } | undefined {
    const meta = this.held.store.meta(CHAIN_ID, CHUNK);
    const record = this.disk.chunks.get(`${CHAIN_ID}/${CHUNK.toString('hex')}`);
    return meta && record ? { version: meta.commitVer, content: record.content } : undefined;
  }

  async serve(
    method: string,
    body: unknown,
    payload: Buffer | undefined,
  ): Promise<{ body: unknown; payload?: Buffer }> {
    type Req<M extends keyof typeof StorageService.methods> = z.output<
      (typeof StorageService.methods)[M]['request']
    >;
    switch (method) {
      case 'write':
        return { body: await this.craq.handle(body as Req<'write'>, payload, 'client') };
      case 'update':
        return { body: await this.craq.handle(body as Req<'update'>, payload, 'chain') };
      case 'batchRead': {
        const { results, payload: data } = await this.queries.batchRead(body as Req<'batchRead'>);
        return { body: { results }, payload: data };
      }
      case 'syncStart': {
        const req = body as Req<'syncStart'>;
        return {
          body: this.queries.syncPage(
            req.chainId,
            req.chainVersion,
            req.after && Buffer.from(req.after),
            req.limit,
          ),
        };
      }
      case 'syncDone': {
        const role = this.roles.get(this.targetId);
        if (
          !role ||
          role.state !== 'SYNCING' ||
          role.chainVersion !== (body as Req<'syncDone'>).chainVersion
        ) {
          throw new ThreeFsError('CHAIN_VERSION_MISMATCH', 'sim: not syncing at that version');
        }
        this.held.state = nextLocalTarget(this.held.state, { kind: 'sync-done' });
        this.heartbeat();
        return { body: {} };
      }
      case 'syncProgress':
        return { body: {} };
      default:
        throw new ThreeFsError('UNIMPLEMENTED', `sim: ${method}`);
    }
  }
}

interface Ack {
  client: number;
  seq: number;
  version: number;
}

export interface SimResult {
  violations: string[];
  bugs: string[];
  acks: number;
  reads: number;
  crashes: number;
  pauses: number;
  /** Times re-sync declared a successor inconsistent and took it offline. */
  inconsistencies: number;
  events: number;
  finalVersion: number;
}

const valueOf = (client: number, seq: number) => {
  const value = Buffer.alloc(16);
  value.writeUInt32BE(client, 0);
  value.writeUInt32BE(seq, 4);
  return value;
};

export async function simulate(spec: SimSpec): Promise<SimResult> {
  silent = createLogger({
    role: 'sim',
    level: (process.env.SIM_LOG as 'warn' | undefined) ?? 'silent',
  });
  const rng = new Rng(spec.seed);
  const sched = new Scheduler(rng);
  const bugs: string[] = [];
  const violations: string[] = [];
  const net = new SimNetwork(sched, bugs);
  const nodes = Array.from({ length: spec.chainLength }, (_, i) => new SimNode(i + 1, sched, net));
  const mgmtd = new SimMgmtd(sched, nodes, spec.detectorMs);
  for (const n of nodes) {
    n.mgmtd = mgmtd;
    net.nodes.set(n.address, n);
    n.boot();
  }
  // Background activity: heartbeats, mgmtd's state machine, routing polls and re-sync ticks.
  let running = true;
  const every = (ms: number, fn: () => void) => {
    const loop = () => {
      if (!running) return;
      fn();
      sched.at(sched.now() + ms, loop);
    };
    sched.at(sched.now() + rng.int(0, ms), loop);
  };
  every(25, () => mgmtd.tick());
  for (const n of nodes) {
    every(40, () => n.heartbeat());
    every(40, () => n.refresh());
    every(50, () => n.tickResync());
  }

  const acks: Ack[] = [];
  let maxAcked = 0;
  let reads = 0;
  const seqs = new Map<string, number>();

  const client = async (id: number) => {
    const endpoint: Endpoint = { alive: true, incarnation: 1 };
    for (let op = 0; op < spec.opsPerClient; op++) {
      if (rng.next() < 0.6) {
        const seq = op + 1;
        const value = valueOf(id, seq);
        seqs.set(value.toString('hex'), seq);
        const tag = { clientId: `c${id}`, channelId: 1, seqnum: seq };
        const deadline = sched.now() + 20_000;
        while (sched.now() < deadline) {
          const chain = mgmtd.chain;
          const head = chain.targets[0]!;
          if (head.state !== 'SERVING') {
            await sched.sleep(20);
            continue;
          }
          try {
            const reply = await net.call(
              endpoint,
              1,
              `sim-${head.targetId - 100}`,
              StorageService.methods.write,
              {
                chainId: CHAIN_ID,
                chainVersion: chain.chainVersion,
                chunkId: CHUNK,
                kind: 'write',
                offset: 0,
                length: 16,
                checksum: crc32c(value),
                chunkSize: CHUNK_SIZE,
                tag,
              },
              { payload: value, timeoutMs: 400 },
            );
            if (
              acks.some(
                (a) => a.version === reply.body.commitVer && (a.client !== id || a.seq !== seq),
              )
            ) {
              violations.push(`two acknowledged writes share version ${reply.body.commitVer}`);
            }
            acks.push({ client: id, seq, version: reply.body.commitVer });
            maxAcked = Math.max(maxAcked, reply.body.commitVer);
            break;
          } catch (err) {
            if (!(err instanceof ThreeFsError) || !err.retryable) {
              violations.push(
                `client ${id} write ${seq}: non-retryable ${(err as ThreeFsError).code}: ${(err as Error).message}`,
              );
              break;
            }
            await sched.sleep(rng.int(5, 30));
          }
        }
      } else {
        const floor = maxAcked; // every write acknowledged before this read began
        const chain = mgmtd.chain;
        const serving = chain.targets.filter((t) => t.state === 'SERVING');
        if (serving.length === 0) continue;
        const pick = rng.pick(serving);
        try {
          const { body, payload } = await net.call(
            endpoint,
            1,
            `sim-${pick.targetId - 100}`,
            StorageService.methods.batchRead,
            {
              ios: [
                {
                  chainId: CHAIN_ID,
                  chainVersion: chain.chainVersion,
                  chunkId: CHUNK,
                  offset: 0,
                  length: 16,
                },
              ],
            },
            { timeoutMs: 400 },
          );
          const result = body.results[0]!;
          if (result.status === 'ok') {
            reads++;
            if (result.commitVer < floor)
              violations.push(
                `stale read: version ${result.commitVer} after version ${floor} was acknowledged`,
              );
            const data = payload!.subarray(0, result.length);
            const ack = acks.find((a) => a.version === result.commitVer);
            if (ack && !data.equals(valueOf(ack.client, ack.seq)))
              violations.push(
                `version ${result.commitVer} read back other bytes than were acknowledged`,
              );
            if (!seqs.has(data.toString('hex')))
              violations.push(`read bytes no client wrote: ${data.toString('hex')}`);
          }
        } catch {
          /* a read that fails is retried by real clients; only wrong data is a violation */
        }
      }
      await sched.sleep(rng.int(0, 60));
    }
  };

  // Faults: a node dies at a random moment and comes back after a while, or pauses for a while
  // (often past the failure detector's delay) and runs on with what it had.
  let crashes = 0;
  let pauses = 0;
  const chaos = async () => {
    while (crashes + pauses < spec.maxFaults) {
      await sched.sleep(rng.int(100, 600));
      const victim = rng.pick(nodes.filter((n) => n.alive));
      if (!victim) continue;
      const downMs = rng.int(Math.floor(spec.detectorMs / 2), spec.detectorMs * 3);
      if (rng.next() < 0.5) {
        victim.crash();
        crashes++;
        await sched.sleep(downMs);
        victim.boot();
      } else {
        victim.pause(downMs);
        pauses++;
        await sched.sleep(downMs);
      }
    }
  };

  const work = Promise.all([
    ...Array.from({ length: spec.clients }, (_, i) => client(i + 1)),
    chaos(),
  ]);
  let done = false;
  void work.then(() => (done = true));
  for (let t = 1_000; !done && t <= 300_000; t += 1_000) await sched.runUntil(t);
  if (!done) violations.push('clients did not finish within 300 s of virtual time');

  // Heal: everything back up; the chain must become fully SERVING and converge.
  for (const n of nodes) if (!n.alive) n.boot();
  const healedBy = sched.now() + 60_000;
  const healthy = () =>
    mgmtd.chain.targets.every((t) => t.state === 'SERVING') &&
    nodes.every((n) => n.state.local === 'UPTODATE');
  while (!healthy() && sched.now() < healedBy) await sched.runUntil(sched.now() + 100);
  if (!healthy()) violations.push(`chain did not heal: ${JSON.stringify(mgmtd.chain.targets)}`);
  await sched.runUntil(sched.now() + 500);
  running = false;

  const copies = nodes.map((n) => n.committed());
  const first = copies[0];
  for (const [i, c] of copies.entries()) {
    if (
      (c?.version ?? 0) !== (first?.version ?? 0) ||
      !(c?.content ?? Buffer.alloc(0)).equals(first?.content ?? Buffer.alloc(0))
    ) {
      violations.push(
        `replica ${i + 1} committed v${c?.version} differs from replica 1 v${first?.version}`,
      );
    }
  }
  const finalVersion = first?.version ?? 0;
  if (finalVersion < maxAcked)
    violations.push(`acknowledged version ${maxAcked} lost: replicas are at ${finalVersion}`);
  const last = acks.find((a) => a.version === finalVersion);
  if (last && first && !first.content.equals(valueOf(last.client, last.seq)))
    violations.push('final content is not the last acknowledged write');
  return {
    violations,
    bugs,
    acks: acks.length,
    reads,
    crashes,
    pauses,
    inconsistencies: mgmtd.inconsistencies,
    events: sched.events,
    finalVersion,
  };
}
