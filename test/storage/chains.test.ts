// CRAQ on real processes: chains of length 1, 2 and 3 over three storage nodes; concurrent writers
// on the same and on different chunks; every acknowledged write reads back byte-exact from every
// SERVING replica.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { chunkId } from '../../daemons/common/layout.js';
import { RpcClient } from '../../daemons/common/rpc/index.js';
import { StorageService } from '../../daemons/common/services/storage.js';
import { quietLog, TestCluster } from '../helpers/cluster.js';

const CHUNK = 1024 * 1024;

describe('CRAQ chains on three storage processes', () => {
  const cluster = new TestCluster({
    name: 'chains',
    storageNodes: [101, 102, 103],
    chains: [
      { chainId: 1, nodes: [101] },
      { chainId: 2, nodes: [102, 103] },
      { chainId: 3, nodes: [101, 102, 103] },
    ],
  });
  before(() => cluster.start());
  after(() => cluster.stop());

  /** Reads one chunk from every SERVING replica of its chain, straight from each node. */
  async function readEveryReplica(chainId: number, id: Buffer, length: number): Promise<Buffer[]> {
    const info = await cluster.routingInfo();
    const chain = info.chains.find((c) => c.chainId === chainId)!;
    const out: Buffer[] = [];
    for (const t of chain.targets.filter((x) => x.state === 'SERVING')) {
      const node = info.nodes.find(
        (n) => n.nodeId === info.targets.find((x) => x.targetId === t.targetId)!.nodeId,
      )!;
      const rpc = new RpcClient({ address: node.address, clusterId: 'chains', log: quietLog });
      const { body, payload } = await rpc.call(StorageService.methods.batchRead, {
        ios: [{ chainId, chainVersion: chain.chainVersion, chunkId: id, offset: 0, length }],
      });
      await rpc.close();
      assert.equal(
        body.results[0]?.status,
        'ok',
        `replica ${t.targetId}: ${body.results[0]?.message}`,
      );
      out.push(payload!.subarray(0, body.results[0]!.length));
    }
    return out;
  }

  for (const chainId of [1, 2, 3]) {
    it(`chain of length ${chainId}: a write reads back from every replica`, async () => {
      const id = chunkId(1000 + chainId, 0);
      const data = randomBytes(300_000);
      const reply = await cluster.client.writeChunk(chainId, id, 0, data, CHUNK);
      assert.equal(reply.length, data.length);
      const replicas = await readEveryReplica(chainId, id, CHUNK);
      assert.equal(replicas.length, chainId);
      for (const copy of replicas) assert.ok(copy.equals(data), 'replica content matches');
      const [viaClient] = await cluster.client.readChunks([
        { chainId, chunkId: id, offset: 0, length: CHUNK },
      ]);
      assert.ok(viaClient?.equals(data));
    });
  }

  it('concurrent writers on different chunks and on the same chunk: every acknowledged write survives', async () => {
    const writers = 6;
    const perWriter = 8;
    const expected = new Map<string, Buffer>();
    const shared = chunkId(5000, 0);
    const sharedImage = Buffer.alloc(writers * 4096);
    await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        for (let i = 0; i < perWriter; i++) {
          const id = chunkId(6000 + w, i);
          const data = randomBytes(64 * 1024 + ((w * 7919 + i) % 4096));
          await cluster.client.writeChunk(3, id, 0, data, CHUNK);
          expected.set(id.toString('hex'), data);
          // Each writer owns one 4 KiB slice of a shared chunk: same chunk, disjoint bytes.
          const slice = randomBytes(4096);
          await cluster.client.writeChunk(3, shared, w * 4096, slice, CHUNK);
          slice.copy(sharedImage, w * 4096);
        }
      }),
    );
    for (const [hex, data] of expected) {
      const replicas = await readEveryReplica(3, Buffer.from(hex, 'hex'), CHUNK);
      for (const copy of replicas) assert.ok(copy.equals(data), `chunk ${hex}`);
    }
    for (const copy of await readEveryReplica(3, shared, CHUNK))
      assert.ok(copy.equals(sharedImage), 'shared chunk');
  });

  it('a retried update with the same channel and seqnum runs once', async () => {
    const info = await cluster.routingInfo();
    const chain = info.chains.find((c) => c.chainId === 2)!;
    const head = info.nodes.find((n) => n.nodeId === 102)!;
    const rpc = new RpcClient({ address: head.address, clusterId: 'chains', log: quietLog });
    const id = chunkId(7000, 0);
    const { crc32c } = await import('../../daemons/common/crc32c.js');
    const data = Buffer.from('exactly once');
    const request = {
      chainId: 2,
      chainVersion: chain.chainVersion,
      chunkId: id,
      kind: 'write' as const,
      offset: 0,
      length: data.length,
      checksum: crc32c(data),
      chunkSize: CHUNK,
      tag: { clientId: 'retry-test', channelId: 1, seqnum: 1 },
    };
    const first = await rpc.call(StorageService.methods.write, request, { payload: data });
    const again = await rpc.call(StorageService.methods.write, request, { payload: data });
    assert.deepEqual(again.body, first.body, 'the retry gets the first result');
    const meta = await rpc.call(StorageService.methods.queryChunk, { chainId: 2, chunkId: id });
    assert.equal(meta.body.meta?.commitVer, 1, 'applied once');
    await assert.rejects(
      rpc.call(
        StorageService.methods.write,
        { ...request, checksum: request.checksum ^ 1, tag: { ...request.tag, seqnum: 2 } },
        { payload: data },
      ),
      /CRC32C/,
    );
    await rpc.close();
  });
});
