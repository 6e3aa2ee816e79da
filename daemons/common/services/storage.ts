// The storage RPC service (brief §1.4, §3): client reads and writes, chain forwarding, chunk
// queries and re-sync. Method ids follow 3FS's StorageSerde. Bulk data travels in the frame's raw
// payload, never in the body.
import { z } from 'zod';
import { defineService } from '../rpc/index.js';

const Id = z.number().int().positive();
const U32 = z.number().int().min(0).max(0xffff_ffff);
/** 16-byte chunk ids travel as Buffers (MessagePack bin). */
const ChunkIdBytes = z.custom<Uint8Array<ArrayBufferLike>>(
  (value) => value instanceof Uint8Array && value.length === 16,
  'chunk id must be 16 bytes',
);

/** Identifies one client update for exactly-once retries (brief §3.2 step 2). */
export const UpdateTag = z.object({
  clientId: z.string().min(1).max(64),
  channelId: z.number().int().min(0).max(0xffff),
  seqnum: z.number().int().min(0),
  requestId: z.number().int().min(0).default(0),
});

export const ChunkIo = z.object({
  chainId: Id,
  chainVersion: U32,
  chunkId: ChunkIdBytes,
});

export const UpdateKind = z.enum(['write', 'truncate', 'remove']);

export const UpdateRequestBody = ChunkIo.extend({
  kind: UpdateKind,
  offset: U32.default(0),
  /** write: payload length; truncate: the new length. */
  length: U32.default(0),
  /** CRC32C of the payload, checked before anything is applied. */
  checksum: U32.default(0),
  chunkSize: z
    .number()
    .int()
    .min(65_536)
    .max(64 * 1024 * 1024),
  tag: UpdateTag,
  /** 0 from a client; the version the head assigned when forwarded along the chain. */
  updateVer: U32.default(0),
  /** A full-chunk replace for a SYNCING successor (re-sync, or a forwarded write converted). */
  syncing: z.boolean().default(false),
  /**
   * Re-sync transfers: the chain version the predecessor committed this chunk at. The successor
   * records it, so both copies agree; 0 means the request's (current) chain version.
   */
  chunkChainVer: U32.default(0),
});

export const UpdateResult = z.object({
  commitVer: U32,
  chainVer: U32,
  /** Length and CRC32C of the chunk after the update. */
  length: U32,
  checksum: U32,
});

export const ChunkMetaWire = z.object({
  chunkId: ChunkIdBytes,
  commitVer: U32,
  updateVer: U32,
  chainVer: U32,
  length: U32,
  checksum: U32,
  dirty: z.boolean().default(false),
});

export const ReadIoResult = z.object({
  /** 'ok', or a status code (NOT_FOUND, NOT_COMMITTED, CHECKSUM_MISMATCH, CHAIN_VERSION_MISMATCH...). */
  status: z.string(),
  message: z.string().default(''),
  /** Bytes of this IO in the reply payload, which concatenates every IO's bytes in order. */
  length: U32.default(0),
  commitVer: U32.default(0),
  /** Length of the whole chunk, so readers know where a short read ended. */
  chunkLength: U32.default(0),
});

export const StorageService = defineService({
  id: 3,
  name: 'Storage',
  methods: {
    batchRead: {
      id: 1,
      request: z.object({
        ios: z
          .array(ChunkIo.extend({ offset: U32, length: U32 }))
          .min(1)
          .max(1024),
        allowUncommitted: z.boolean().default(false),
      }),
      response: z.object({ results: z.array(ReadIoResult) }),
    },
    /** A client write to the head (kind write, truncate or remove). */
    write: { id: 2, request: UpdateRequestBody, response: UpdateResult },
    /** The same update forwarded by a predecessor along the chain. */
    update: { id: 3, request: UpdateRequestBody, response: UpdateResult },
    queryLastChunk: {
      id: 5,
      request: z.object({ chainId: Id, chainVersion: U32, begin: ChunkIdBytes, end: ChunkIdBytes }),
      response: z.object({
        lastChunkId: ChunkIdBytes.optional(),
        lastChunkLength: U32.default(0),
        chunkCount: z.number().int().min(0),
        totalBytes: z.number().int().min(0),
      }),
    },
    /** Removes up to `limit` chunks of [begin, end) through the chain; `more` if some remain. */
    removeChunks: {
      id: 7,
      request: z.object({
        chainId: Id,
        chainVersion: U32,
        begin: ChunkIdBytes,
        end: ChunkIdBytes,
        limit: z.number().int().min(1).max(4096).default(256),
        tag: UpdateTag,
      }),
      response: z.object({ removed: z.number().int(), more: z.boolean() }),
    },
    /** Re-sync: the successor's metadata for one chain, a page at a time, in chunk id order. */
    syncStart: {
      id: 8,
      request: z.object({
        chainId: Id,
        chainVersion: U32,
        after: ChunkIdBytes.optional(),
        limit: z.number().int().min(1).max(65_536).default(8192),
      }),
      response: z.object({ chunks: z.array(ChunkMetaWire), more: z.boolean() }),
    },
    syncDone: {
      id: 9,
      request: z.object({ chainId: Id, chainVersion: U32 }),
      response: z.object({}),
    },
    /** The predecessor tells a SYNCING target how far re-sync has come (shown in list-targets). */
    syncProgress: {
      id: 14,
      request: z.object({
        chainId: Id,
        chainVersion: U32,
        chunksDone: z.number().int().min(0),
        chunksTotal: z.number().int().min(0),
        bytesDone: z.number().int().min(0),
        bytesTotal: z.number().int().min(0),
      }),
      response: z.object({}),
    },
    spaceInfo: {
      id: 10,
      request: z.object({}),
      response: z.object({
        disks: z.array(
          z.object({
            diskIndex: z.number().int().min(0),
            path: z.string(),
            capacityBytes: z.number(),
            freeBytes: z.number(),
            usedBytes: z.number(),
            lowSpace: z.boolean(),
            rejectNewChunks: z.boolean(),
          }),
        ),
      }),
    },
    queryChunk: {
      id: 12,
      request: z.object({ chainId: Id, chunkId: ChunkIdBytes }),
      response: z.object({ meta: ChunkMetaWire.optional() }),
    },
    /**
     * Same-host clients only (the unix socket listener): maps the client's shared memory (a memfd
     * sealed against shrinking, named by a /proc/<pid>/fd/<n> path) for batchReadToRegion. The
     * region is unmapped with unmapRegion or when this connection closes.
     */
    mapRegion: {
      id: 20,
      request: z.object({
        path: z.string().regex(/^\/proc\/\d+\/fd\/\d+$/, 'a region is named /proc/<pid>/fd/<n>'),
        bytes: z
          .number()
          .int()
          .min(1)
          .max(2 ** 40),
      }),
      response: z.object({ regionId: Id }),
    },
    unmapRegion: {
      id: 21,
      request: z.object({ regionId: Id }),
      response: z.object({}),
    },
    /**
     * batchRead whose bytes land in a mapped region, each IO's at its `target` offset (the
     * same-host stand-in for RDMA writes into a client's buffer): no payload comes back.
     */
    batchReadToRegion: {
      id: 22,
      request: z.object({
        regionId: Id,
        ios: z
          .array(
            ChunkIo.extend({
              offset: U32,
              length: U32,
              target: z
                .number()
                .int()
                .min(0)
                .max(2 ** 40),
            }),
          )
          .min(1)
          .max(1024),
        allowUncommitted: z.boolean().default(false),
      }),
      response: z.object({ results: z.array(ReadIoResult) }),
    },
  },
});
