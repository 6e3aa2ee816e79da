// A flipped byte in one replica's chunk file: detected by checksum, never returned to a reader,
// and repaired (the replica drops its copy, goes through re-sync and serves the right bytes again).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chunkId } from '../../daemons/common/layout.js';
import { RpcClient } from '../../daemons/common/rpc/index.js';
import { StorageService } from '../../daemons/common/services/storage.js';
import { quietLog, targetIdOf, TestCluster } from '../helpers/cluster.js';

const CHUNK = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(path.join(dir, e.name)) : [path.join(dir, e.name)],
  );
}

/** Flips one byte of `needle` where it sits in a data file under `disk`; returns the file. */
function flipByteOf(disk: string, needle: Buffer): string {
  for (const file of filesUnder(disk)) {
    if (statSync(file).size < needle.length || file.includes(`${path.sep}meta`)) continue;
    const content = readFileSync(file);
    const at = content.indexOf(needle);
    if (at < 0) continue;
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.from([content[at + 100]! ^ 0xff]), 0, 1, at + 100);
    fsyncSync(fd);
    closeSync(fd);
    return file;
  }
  throw new Error(`the chunk's bytes were not found under ${disk}`);
}

describe('a flipped byte on one replica', () => {
  const cluster = new TestCluster({
    name: 'corruption',
    storageNodes: [101, 102, 103],
    chains: [{ chainId: 1, nodes: [101, 102, 103] }],
  });
  before(() => cluster.start());
  after(() => cluster.stop());

  it('is detected, never returned, and repaired by re-sync', async () => {
    const id = chunkId(42, 0);
    const data = randomBytes(128 * 1024);
    await cluster.client.writeChunk(1, id, 0, data, CHUNK);
    flipByteOf(path.join(cluster.dir, 'storage-102'), data.subarray(0, 4096));

    const info = await cluster.routingInfo();
    const chain = info.chains.find((c) => c.chainId === 1)!;
    const address = info.nodes.find((n) => n.nodeId === 102)!.address;
    const rpc = new RpcClient({ address, clusterId: 'corruption', log: quietLog });
    const direct = await rpc.call(StorageService.methods.batchRead, {
      ios: [
        { chainId: 1, chainVersion: chain.chainVersion, chunkId: id, offset: 0, length: CHUNK },
      ],
    });
    assert.equal(
      direct.body.results[0]?.status,
      'CHECKSUM_MISMATCH',
      'the damaged replica refuses to return the bytes',
    );
    assert.equal(direct.payload?.length ?? 0, 0, 'no bytes of the damaged copy travel');

    for (let i = 0; i < 10; i++) {
      const [viaClient] = await cluster.client.readChunks([
        { chainId: 1, chunkId: id, offset: 0, length: CHUNK },
      ]);
      assert.ok(viaClient?.equals(data), 'clients read the right bytes from another replica');
    }

    // The damaged target re-syncs: it leaves the chain's serving set and comes back.
    const deadline = Date.now() + 30_000;
    let repaired = false;
    while (!repaired && Date.now() < deadline) {
      await sleep(200);
      const now = await cluster.routingInfo();
      const c = now.chains.find((x) => x.chainId === 1)!;
      const t = c.targets.find((x) => x.targetId === targetIdOf(1, 102));
      if (c.chainVersion > chain.chainVersion && t?.state === 'SERVING') {
        const again = await rpc.call(StorageService.methods.batchRead, {
          ios: [
            { chainId: 1, chainVersion: c.chainVersion, chunkId: id, offset: 0, length: CHUNK },
          ],
        });
        repaired =
          again.body.results[0]?.status === 'ok' &&
          again.payload!.subarray(0, again.body.results[0]!.length).equals(data);
      }
    }
    await rpc.close();
    assert.ok(repaired, `the replica serves the right bytes again\n${cluster.recentProblems()}`);
  });
});
