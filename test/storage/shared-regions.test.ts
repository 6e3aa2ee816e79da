// Reads into a same-host client's shared memory on real storage processes: the region is mapped
// only over the unix socket, reads land byte-exact at their targets (holes as zeros through the
// storage client), bad targets fail alone, a region is unusable from other connections, and it
// is unmapped when its connection closes.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { regionOfDescriptor } from '../../daemons/client/region-reads.js';
import { chunkId, type Layout } from '../../daemons/common/layout.js';
import { RpcClient } from '../../daemons/common/rpc/index.js';
import { StorageService } from '../../daemons/common/services/storage.js';
import { usrbioAddon } from '../../daemons/common/usrbio-native.js';
import { metricValue, quietLog, TestCluster } from '../helpers/cluster.js';

const MiB = 1024 * 1024;

describe('reads into shared memory of a same-host client', () => {
  /** Inode 77's layout: 1 MiB chunks, all on chain 1. */
  const layout: Layout = {
    chainTableId: 1,
    chainTableVersion: 1,
    chunkSize: MiB,
    stripeSize: 1,
    chains: { kind: 'list', chainIds: [1] },
  };
  const cluster = new TestCluster({
    name: 'shared-regions',
    storageNodes: [101, 102, 103],
    chains: [
      { chainId: 1, nodes: [101] },
      { chainId: 3, nodes: [101, 102, 103] },
    ],
  });
  const ring = new (usrbioAddon().ProgramRing)(8, 4 * MiB);
  const region = regionOfDescriptor(ring.fd, ring.regionBytes);
  const data = randomBytes(3 * MiB);
  const clients: RpcClient[] = [];
  const rpc = (address: unknown) => {
    const client = new RpcClient({
      address: String(address),
      clusterId: 'shared-regions',
      log: quietLog,
    });
    clients.push(client);
    return client;
  };
  let chainVersion = 0;
  const io = (chainId: number, index: number, offset: number, length: number, target: number) => ({
    chainId,
    chainVersion,
    chunkId: chunkId(77, index),
    offset,
    length,
    target,
  });

  before(async () => {
    await cluster.start();
    chainVersion = (await cluster.routingInfo()).chains.find((c) => c.chainId === 1)!.chainVersion;
    for (let i = 0; i < 3; i++)
      await cluster.client.writeChunk(
        1,
        chunkId(77, i),
        0,
        data.subarray(i * MiB, (i + 1) * MiB),
        MiB,
      );
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await cluster.stop();
  });

  const node101 = () => cluster.storage.get(101)!.ready;
  const regionsMapped = () =>
    metricValue(cluster.storage.get(101)!.ready.status, 'threefs_storage_shared_regions');

  it('maps only over the unix socket', async () => {
    assert.match(String(node101().localAddress), /^unix:/);
    await assert.rejects(rpc(node101().address).call(StorageService.methods.mapRegion, region), {
      code: 'PERMISSION_DENIED',
    });
  });

  it('lands each read at its target, checked against the region', async () => {
    const local = rpc(node101().localAddress);
    const { body } = await local.call(StorageService.methods.mapRegion, region);
    const at = (offset: number) => ring.dataOffset + offset;
    const { body: reply, payload } = await local.call(StorageService.methods.batchReadToRegion, {
      regionId: body.regionId,
      ios: [
        io(1, 0, 0, MiB, at(0)),
        io(1, 1, 1000, 5000, at(2 * MiB + 7)),
        io(1, 2, 0, MiB, ring.regionBytes - 100), // past the end of the region
        io(1, 9, 0, 4096, at(3 * MiB)), // no such chunk
      ],
    });
    assert.equal(payload, undefined);
    assert.deepEqual(
      reply.results.map((r) => [r.status, r.length]),
      [
        ['ok', MiB],
        ['ok', 5000],
        ['INVALID_ARGUMENT', 0],
        ['NOT_FOUND', 0],
      ],
    );
    assert.ok(ring.data.subarray(0, MiB).equals(data.subarray(0, MiB)));
    assert.ok(
      ring.data.subarray(2 * MiB + 7, 2 * MiB + 5007).equals(data.subarray(MiB + 1000, MiB + 6000)),
    );

    const other = rpc(node101().localAddress);
    await assert.rejects(
      other.call(StorageService.methods.batchReadToRegion, {
        regionId: body.regionId,
        ios: [io(1, 0, 0, 10, at(0))],
      }),
      { code: 'NOT_FOUND' },
    );
    assert.equal(await regionsMapped(), 1);
    await local.close();
    for (let i = 0; i < 50 && (await regionsMapped()) > 0; i++)
      await new Promise((r) => setTimeout(r, 20));
    assert.equal(await regionsMapped(), 0, 'closing the connection unmapped the region');
  });

  it('reports each item once, as soon as its bytes are in place', async () => {
    ring.data.fill(0xee);
    const item = (at: number, offset: number, length: number) => ({
      layout,
      inodeId: 77,
      offset,
      target: ring.data.subarray(at, at + length),
      fileLength: 5 * MiB,
      regionOffset: ring.dataOffset + at,
    });
    const items = [item(0, MiB - 10, MiB), item(MiB, 3 * MiB, 8192), item(2 * MiB, 6 * MiB, 4096)];
    const expected = [data.subarray(MiB - 10, 2 * MiB - 10), Buffer.alloc(8192), Buffer.alloc(0)];
    const reports: number[][] = [];
    const counts = await cluster.client.readFilesInto(items, region, (i, bytes) => {
      // What the caller may rely on when told: the bytes are final.
      const got = items[i]!.target.subarray(0, bytes);
      reports.push([i, bytes, got.equals(expected[i]!) ? 1 : 0]);
    });
    assert.deepEqual(counts, [MiB, 8192, 0]);
    assert.deepEqual(
      reports.sort((a, b) => a[0]! - b[0]!),
      [
        [0, MiB, 1],
        [1, 8192, 1],
        [2, 0, 1],
      ],
    );
  });

  it('the storage client reads files into the region, holes as zeros', async () => {
    ring.data.fill(0xee);
    const target = ring.data.subarray(100, 100 + 2 * MiB);
    const [n] = await cluster.client.readFilesInto(
      [
        {
          layout,
          inodeId: 77,
          offset: MiB - 10,
          target,
          fileLength: 5 * MiB,
          regionOffset: ring.dataOffset + 100,
        },
      ],
      region,
    );
    assert.equal(n, 2 * MiB);
    // chunks 0..2 exist; the read covers the last 10 bytes of 0, all of 1 and part of 2
    assert.ok(target.equals(data.subarray(MiB - 10, 3 * MiB - 10)));
    const hole = ring.data.subarray(0, MiB);
    const [m] = await cluster.client.readFilesInto(
      [
        {
          layout,
          inodeId: 77,
          offset: 3 * MiB,
          target: hole,
          fileLength: 5 * MiB,
          regionOffset: ring.dataOffset,
        },
      ],
      region,
    );
    assert.equal(m, MiB);
    assert.ok(hole.equals(Buffer.alloc(MiB)), 'a chunk that does not exist reads as zeros');
    await cluster.client.releaseRegion(region);
  });
});
