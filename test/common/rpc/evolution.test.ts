// Fields are append-only: a v2 peer adds fields with defaults, and both directions of a mixed
// pair keep working. Proven on the codec and over a real connection.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { decodeBody, encodeBody } from '../../../daemons/common/rpc/body-codec.js';
import { defineService, RpcServer } from '../../../daemons/common/rpc/index.js';
import { captureLog, CLUSTER, newClient } from './helpers.js';

const StatV1 = {
  request: z.object({ inode: z.number() }),
  response: z.object({ inode: z.number(), size: z.number() }),
};
const StatV2 = {
  request: z.object({ inode: z.number(), followSymlinks: z.boolean().default(true) }),
  response: z.object({ inode: z.number(), size: z.number(), mtimeMs: z.number().default(0) }),
};
const MetaV1 = defineService({ id: 4, name: 'Meta', methods: { stat: { id: 2, ...StatV1 } } });
const MetaV2 = defineService({ id: 4, name: 'Meta', methods: { stat: { id: 2, ...StatV2 } } });

describe('schema evolution (append-only fields)', () => {
  it('codec: an old reader drops new fields, a new reader fills missing ones with defaults', () => {
    const fromNew = encodeBody({ inode: 7, size: 10, mtimeMs: 99 });
    assert.deepEqual(decodeBody(StatV1.response, fromNew, 'r'), { inode: 7, size: 10 });
    const fromOld = encodeBody({ inode: 7, size: 10 });
    assert.deepEqual(decodeBody(StatV2.response, fromOld, 'r'), { inode: 7, size: 10, mtimeMs: 0 });
  });

  async function serve(version: 1 | 2) {
    const server = new RpcServer({ clusterId: CLUSTER, log: captureLog().log });
    const seen: unknown[] = [];
    if (version === 1) {
      server.register(MetaV1, {
        stat: (request) => {
          seen.push(request);
          return { body: { inode: request.inode, size: 1 } };
        },
      });
    } else {
      server.register(MetaV2, {
        stat: (request) => {
          seen.push(request);
          return { body: { inode: request.inode, size: 2, mtimeMs: 5 } };
        },
      });
    }
    await server.listen();
    return { server, seen };
  }

  it('a new client calls an old server: the server ignores the new field, the client defaults the missing one', async () => {
    const { server, seen } = await serve(1);
    const client = newClient(server.address);
    try {
      const reply = await client.call(MetaV2.methods.stat, { inode: 3, followSymlinks: false });
      assert.deepEqual(seen, [{ inode: 3 }]);
      assert.deepEqual(reply.body, { inode: 3, size: 1, mtimeMs: 0 });
    } finally {
      await client.close();
      await server.close();
    }
  });

  it('an old client calls a new server: the server defaults the missing field, the client ignores the new one', async () => {
    const { server, seen } = await serve(2);
    const client = newClient(server.address);
    try {
      const reply = await client.call(MetaV1.methods.stat, { inode: 4 });
      assert.deepEqual(seen, [{ inode: 4, followSymlinks: true }]);
      assert.deepEqual(reply.body, { inode: 4, size: 2 });
    } finally {
      await client.close();
      await server.close();
    }
  });
});
