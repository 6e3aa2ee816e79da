// Fault tests on real processes: SIGKILL of the head, a middle and the tail of a chain of three in
// the middle of a write stream. The writer's retries succeed after routing changes, nothing
// acknowledged is lost, and the killed node re-syncs on restart and serves again. Then the LASTSRV
// path: every replica dies, the two that died first come back first and must not serve, and the
// chain recovers only when the last server returns. And a node frozen (SIGSTOP) until mgmtd has
// demoted it, which must find its way back through re-sync when it wakes.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { chunkId } from '../../daemons/common/layout.js';
import { RpcClient } from '../../daemons/common/rpc/index.js';
import { StorageService } from '../../daemons/common/services/storage.js';
import { quietLog, targetIdOf, TestCluster } from '../helpers/cluster.js';

const CHUNK = 1024 * 1024;
const CHAIN = 3;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Writes chunks in a loop until stopped; remembers the last acknowledged content of each. */
class Writer {
  readonly acked = new Map<string, Buffer>();
  readonly uncertain = new Set<string>();
  errors = 0;
  writes = 0;
  private stopped = false;
  private done: Promise<void> | undefined;

  constructor(
    private readonly cluster: TestCluster,
    private readonly inode: number,
  ) {}

  start(): void {
    this.done = (async () => {
      for (let i = 0; !this.stopped && i < 10_000; i++) {
        const id = chunkId(this.inode, i % 24);
        const hex = id.toString('hex');
        const data = randomBytes(32 * 1024);
        try {
          await this.cluster.client.writeChunk(CHAIN, id, 0, data, CHUNK);
          this.acked.set(hex, data);
          this.uncertain.delete(hex);
          this.writes++;
        } catch {
          this.errors++;
          this.uncertain.add(hex); // it may or may not have been applied
        }
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

/**
 * Nothing in these tests corrupts a chunk, so a re-sync that calls a successor inconsistent is
 * wrong (it takes a healthy replica offline and restarts its recovery; docs/replication.md).
 */
function assertNoFalseInconsistency(cluster: TestCluster): void {
  const found = cluster.storageLogged(
    're-sync found an inconsistency; taking the successor offline',
  );
  assert.deepEqual(found, [], 're-sync found no inconsistency');
}

async function verifyEveryReplica(
  cluster: TestCluster,
  acked: Map<string, Buffer>,
  uncertain: Set<string>,
): Promise<number> {
  let info = await cluster.waitHealthy(60_000);
  const chain = () => info.chains.find((c) => c.chainId === CHAIN)!;
  let checked = 0;
  for (const t of chain().targets) {
    const nodeId = info.targets.find((x) => x.targetId === t.targetId)!.nodeId;
    const address = info.nodes.find((n) => n.nodeId === nodeId)!.address;
    const rpc = new RpcClient({ address, clusterId: cluster.spec.name, log: quietLog });
    for (const [hex, data] of acked) {
      if (uncertain.has(hex)) continue;
      const read = () =>
        rpc.call(StorageService.methods.batchRead, {
          ios: [
            {
              chainId: CHAIN,
              chainVersion: chain().chainVersion,
              chunkId: Buffer.from(hex, 'hex'),
              offset: 0,
              length: CHUNK,
            },
          ],
        });
      let { body, payload } = await read();
      // A node may not have seen the newest routing yet (it polls every 200 ms): ask again.
      for (
        let retry = 0;
        retry < 20 && /VERSION_MISMATCH/.test(body.results[0]?.status ?? '');
        retry++
      ) {
        await sleep(100);
        info = await cluster.routingInfo();
        ({ body, payload } = await read());
      }
      assert.equal(
        body.results[0]?.status,
        'ok',
        `node ${nodeId} chunk ${hex}: ${body.results[0]?.status} ${body.results[0]?.message}`,
      );
      assert.ok(
        payload!.subarray(0, body.results[0]!.length).equals(data),
        `node ${nodeId} chunk ${hex} differs`,
      );
      checked++;
    }
    await rpc.close();
  }
  return checked;
}

describe('storage faults: SIGKILL in the middle of a write stream', () => {
  const cluster = new TestCluster({
    name: 'faults',
    storageNodes: [101, 102, 103],
    chains: [{ chainId: CHAIN, nodes: [101, 102, 103] }],
  });
  before(() => cluster.start());
  after(() => cluster.stop());

  const positions = ['head', 'middle', 'tail'] as const;
  positions.forEach((position, index) => {
    it(`kill the ${position}: writes go on, nothing acknowledged is lost, it re-syncs and serves again`, async () => {
      const info = await cluster.waitHealthy(30_000);
      const chain = info.chains.find((c) => c.chainId === CHAIN)!;
      const victimTarget = chain.targets[index]!.targetId;
      const victim = info.targets.find((t) => t.targetId === victimTarget)!.nodeId;
      const writer = new Writer(cluster, 20_000 + index);
      writer.start();
      await sleep(400);
      const before = writer.writes;
      await cluster.storage.get(victim)!.kill('SIGKILL');
      // Writes must go on while the node is down, once mgmtd has moved it out (bounded wait).
      const deadline = Date.now() + 15_000;
      while (writer.writes < before + 10 && Date.now() < deadline) await sleep(100);
      const duringOutage = writer.writes;
      await cluster.startStorage(victim);
      await cluster.waitHealthy(60_000);
      await sleep(300);
      await writer.stop();
      assert.ok(writer.writes > before, 'writes were acknowledged');
      assert.ok(
        duringOutage >= before + 10,
        `writes went on while the node was down (${duringOutage - before})`,
      );
      const checked = await verifyEveryReplica(cluster, writer.acked, writer.uncertain);
      assert.ok(checked >= 3 * 10, `checked ${checked} chunk copies`);
      const after = await cluster.routingInfo();
      const back = after.chains
        .find((c) => c.chainId === CHAIN)!
        .targets.find((t) => t.targetId === targetIdOf(CHAIN, victim));
      assert.equal(back?.state, 'SERVING', 'the killed node serves again');
      assertNoFalseInconsistency(cluster);
      console.log(
        `# kill ${position} (node ${victim}): ${writer.writes} writes acknowledged, ${writer.errors} failed, ${checked} copies verified`,
      );
    });
  });

  it('a node frozen past its heartbeat deadline (SIGSTOP) fences itself when it wakes, re-syncs and serves again', async () => {
    const info = await cluster.waitHealthy(30_000);
    const chain = info.chains.find((c) => c.chainId === CHAIN)!;
    const victimTarget = chain.targets[1]!.targetId;
    const victim = info.targets.find((t) => t.targetId === victimTarget)!.nodeId;
    const writer = new Writer(cluster, 25_000);
    writer.start();
    await sleep(300);
    const proc = cluster.storage.get(victim)!.proc;
    proc.kill('SIGSTOP');
    try {
      // mgmtd stops hearing it and demotes its target while it cannot see that (bounded wait).
      const deadline = Date.now() + 20_000;
      let state: string | undefined = 'SERVING';
      while (state === 'SERVING' && Date.now() < deadline) {
        await sleep(200);
        const routing = await cluster.routingInfo();
        state = routing.chains
          .find((c) => c.chainId === CHAIN)!
          .targets.find((t) => t.targetId === victimTarget)?.state;
      }
      assert.notEqual(state, 'SERVING', 'mgmtd demoted the frozen node');
      await sleep(500);
    } finally {
      proc.kill('SIGCONT');
    }
    // No routing change follows its waking: the target must still go back through re-sync.
    await cluster.waitHealthy(30_000);
    await sleep(300);
    await writer.stop();
    const checked = await verifyEveryReplica(cluster, writer.acked, writer.uncertain);
    assert.ok(checked > 0);
    const back = (await cluster.routingInfo()).chains
      .find((c) => c.chainId === CHAIN)!
      .targets.find((t) => t.targetId === victimTarget);
    assert.equal(back?.state, 'SERVING', 'the frozen node serves again');
    assertNoFalseInconsistency(cluster);
  });

  it('LASTSRV: all replicas die; the first two back must wait; the last server brings the chain back', async () => {
    const writer = new Writer(cluster, 30_000);
    writer.start();
    await sleep(300);
    const info = await cluster.waitHealthy(30_000);
    const order = info.chains
      .find((c) => c.chainId === CHAIN)!
      .targets.map((t) => info.targets.find((x) => x.targetId === t.targetId)!.nodeId);
    const [first, second, last] = order as [number, number, number];
    await cluster.storage.get(first)!.kill('SIGKILL');
    await cluster.storage.get(second)!.kill('SIGKILL');
    await sleep(2_500); // mgmtd moves both out; the writer keeps going on the last one
    await writer.stop();
    await cluster.storage.get(last)!.kill('SIGKILL');
    await sleep(2_500);
    let routing = await cluster.routingInfo();
    let states = routing.chains.find((c) => c.chainId === CHAIN)!.targets;
    assert.equal(states[0]?.targetId, targetIdOf(CHAIN, last));
    assert.equal(states[0]?.state, 'LASTSRV', 'the last serving replica is remembered');

    // The wrong order: the stale replicas return first. They must not serve.
    await cluster.startStorage(first);
    await cluster.startStorage(second);
    await sleep(2_000);
    routing = await cluster.routingInfo();
    states = routing.chains.find((c) => c.chainId === CHAIN)!.targets;
    assert.ok(
      !states.some((t) => t.state === 'SERVING'),
      `nothing may serve before the LASTSRV returns: ${JSON.stringify(states)}`,
    );

    await cluster.startStorage(last);
    const checked = await verifyEveryReplica(cluster, writer.acked, writer.uncertain);
    assert.ok(checked > 0);
    assertNoFalseInconsistency(cluster);
    console.log(
      `# LASTSRV: ${writer.writes} writes acknowledged, ${checked} copies verified after recovery`,
    );
  });
});
