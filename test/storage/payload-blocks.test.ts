// A storage server hands each write's payload block back to its RPC payload pool as soon as the
// update has settled (daemons/common/pooled-views.ts, retire), not when a full GC finds the
// payload's view dead. After 24 chain writes of 1 MiB every replica's pool has used blocks and
// holds none of them: 24 MiB of writes is far too little to make V8 collect in between, so
// without the early return each pool would still hold about 24 MiB.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { chunkId } from '../../daemons/common/layout.js';
import { metricValue, TestCluster } from '../helpers/cluster.js';

const MiB = 1024 * 1024;
const POOL = 'threefs_rpc_payload_pool_bytes';

describe('payload blocks of storage writes', () => {
  const cluster = new TestCluster({
    name: 'payload-blocks',
    storageNodes: [101, 102, 103],
    chains: [{ chainId: 1, nodes: [101, 102, 103] }],
  });
  before(() => cluster.start());
  after(() => cluster.stop());

  it('go back to the pool once each write is answered, on every replica', async () => {
    for (let i = 0; i < 24; i++)
      await cluster.client.writeChunk(1, chunkId(55, i), 0, randomBytes(MiB), MiB);
    for (const node of [101, 102, 103]) {
      const status = cluster.storage.get(node)!.ready.status;
      const total = await metricValue(status, POOL, 'state="total"');
      const inUse = await metricValue(status, POOL, 'state="in_use"');
      assert.ok(total >= MiB, `storage ${node}: its pool took the payloads (total ${total})`);
      assert.equal(inUse, 0, `storage ${node}: ${inUse} bytes of payload blocks still held`);
    }
  });
});
