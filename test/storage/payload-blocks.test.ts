// A storage server hands each write's payload block back to its RPC payload pool as soon as the
// update has settled (daemons/common/pooled-views.ts, retire), not when a full GC finds the
// payload's view dead. After 24 chain writes of 1 MiB every replica's pool has used blocks and
// holds none of them: 24 MiB of writes is far too little to make V8 collect in between, so
// without the early return each pool would still hold about 24 MiB.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { chunkId } from '../../daemons/common/layout.js';
import { TestCluster } from '../helpers/cluster.js';

const MiB = 1024 * 1024;

async function poolBytes(statusUrl: unknown): Promise<{ total: number; inUse: number }> {
  const text = await (await fetch(`${String(statusUrl)}/metrics`)).text();
  const sample = (state: string) =>
    Number(
      new RegExp(`^threefs_rpc_payload_pool_bytes\\{state="${state}"[^}]*\\} (\\S+)`, 'm').exec(
        text,
      )?.[1],
    );
  return { total: sample('total'), inUse: sample('in_use') };
}

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
      const { total, inUse } = await poolBytes(cluster.storage.get(node)!.ready.status);
      assert.ok(total >= MiB, `storage ${node}: its pool took the payloads (total ${total})`);
      assert.equal(inUse, 0, `storage ${node}: ${inUse} bytes of payload blocks still held`);
    }
  });
});
