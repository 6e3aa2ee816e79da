// The storage data path's two shapes, for the RPC benchmark: a write (payload in, empty reply) and
// a read (small request, payload out). The read handler serves one preallocated block so the
// benchmark measures the transport, not an allocator.
import { z } from 'zod';
import { ThreeFsError } from '../daemons/common/errors.js';
import { defineService, type Handlers } from '../daemons/common/rpc/index.js';

export const BulkService = defineService({
  id: 900,
  name: 'BenchBulk',
  methods: {
    write: { id: 1, request: z.object({}), response: z.object({ bytes: z.number() }) },
    read: {
      id: 2,
      request: z.object({
        bytes: z
          .number()
          .int()
          .min(0)
          .max(4 * 1024 * 1024),
      }),
      response: z.object({}),
    },
  },
});

const block = Buffer.alloc(4 * 1024 * 1024, 0x5a);

export const bulkHandlers: Handlers<typeof BulkService> = {
  write: (_request, ctx) => {
    if (ctx.payload === undefined)
      throw new ThreeFsError('INVALID_ARGUMENT', 'write needs a payload');
    return { body: { bytes: ctx.payload.length } };
  },
  read: ({ bytes }) => ({ body: {}, payload: block.subarray(0, bytes) }),
};
