// The contract between the storage service (CRAQ, re-sync; TypeScript) and the chunk engine that
// keeps chunks on one disk (native I/O; daemons/storage/engine/). One engine serves every target on
// its disk; a chunk is addressed by its target's chain id and its 16-byte chunk id.
//
// Versions follow brief §3.1 (see craq-rules.ts): each chunk has a committed version and at most
// one pending version. The engine stores both copies (copy-on-write), so readers of the committed
// version are never torn by a write in progress, and a crash leaves each chunk at its committed
// version or with a pending version that is reported and resolved by re-sync.

export interface ChunkMeta {
  chainId: number;
  chunkId: Buffer;
  /** Committed version; 0 only for a chunk created by a write that has not committed yet. */
  commitVer: number;
  /** commitVer, or commitVer + 1 while a version is pending. */
  updateVer: number;
  /** Chain version at which the chunk was last committed. */
  chainVer: number;
  /** Length of the committed content. */
  length: number;
  /** CRC32C of the committed content (of `length` bytes). */
  checksum: number;
  /** Length and CRC32C of the pending content, when a version is pending. */
  pendingLength?: number;
  pendingChecksum?: number;
  /** Chain version the pending update was made under. */
  pendingChainVer?: number;
  /** The pending update removes the chunk (committing it deletes the chunk). */
  pendingRemove?: boolean;
  /** Request id of the last update, when the service passed one. */
  lastRequestId?: number;
  /** Capacity class the committed content occupies (a power of two, 64 KiB to 64 MiB). */
  chunkSize: number;
}

export interface ReadRequest {
  chainId: number;
  chunkId: Buffer;
  offset: number;
  length: number;
}

export interface ReadResult {
  /** Bytes of the committed version: shorter than asked at the end of the chunk. */
  data: Buffer;
  meta: ChunkMeta;
}

/** A batch read whose bytes share one buffer (readBatch). */
export interface BatchReadResult {
  /** Per request: its meta and where its bytes are in `data` (shorter at a chunk's end). */
  results: Array<{ meta: ChunkMeta; offset: number; length: number } | Error>;
  /** The bytes of every read that succeeded, in request order; failed reads may leave gaps. */
  data: Buffer;
}

export type WriteKind = 'write' | 'truncate' | 'remove';

export interface UpdateRequest {
  chainId: number;
  chunkId: Buffer;
  /** The version this update creates (decided by craq-rules before calling). */
  updateVer: number;
  chainVer: number;
  kind: WriteKind;
  /** write: bytes at `offset` (a gap past the current end is zero-filled). */
  offset: number;
  data?: Buffer;
  /** truncate: the new length. */
  length?: number;
  /** Capacity class for a new chunk. */
  chunkSize: number;
  /**
   * Full-chunk replace from re-sync: the content becomes exactly `data`, any pending version is
   * dropped, and commitVer is set to updateVer - 1 (the caller then commits updateVer).
   */
  syncing?: boolean;
  /** Recorded in the chunk's metadata (3FS keeps the last request per chunk for diagnosis). */
  requestId?: number;
  /**
   * Commit in the same durable step, at this chain version (the committed chain version becomes
   * the larger of it and the chunk's). For the last replica of a chain, which commits right after
   * applying: no pending version is ever written, so a crash leaves the chunk at its old committed
   * version or at the new one, exactly as update-then-commit would, at one metadata commit less.
   */
  commitChainVer?: number;
}

export interface SpaceInfo {
  capacityBytes: number;
  freeBytes: number;
  usedBytes: number;
  /** usedBytes / capacityBytes over the low-space threshold (0.96 by default). */
  lowSpace: boolean;
  /** over the reject-new-chunk threshold (0.98): writes that create chunks fail with NO_SPACE. */
  rejectNewChunks: boolean;
}

export interface ChunkStore {
  /** Committed metadata, or undefined when the chunk does not exist. */
  meta(chainId: number, chunkId: Buffer): ChunkMeta | undefined;
  /** Committed content bytes of a chain's chunks (the sum of their lengths), without a scan. */
  usedBytes(chainId: number): number;
  /** Metadata of every chunk of a chain with begin <= chunkId < end, in chunk id order. */
  listMeta(chainId: number, begin?: Buffer, end?: Buffer, limit?: number): ChunkMeta[];
  /**
   * Reads committed content. One call carries a batch; the engine does the I/O off the JS thread
   * and verifies each block's CRC32C; a mismatch fails that read with CHECKSUM_MISMATCH.
   */
  read(batch: readonly ReadRequest[]): Promise<Array<ReadResult | Error>>;
  /**
   * read(), with every read's bytes in one buffer: what the storage service sends back for a
   * batch, without a buffer per read or a copy to join them.
   */
  readBatch(batch: readonly ReadRequest[]): Promise<BatchReadResult>;
  /**
   * readBatch whose bytes go to `targets[i]` of a mapped shared region (engine/chunk-io.ts
   * mapRegion) instead of a buffer: for same-host clients. Stores without native I/O (the
   * simulation) leave it out, and the service answers such requests with FAILED_PRECONDITION.
   */
  readIntoRegion?(
    batch: readonly ReadRequest[],
    region: number,
    targets: readonly number[],
  ): Promise<Array<{ meta: ChunkMeta; length: number } | Error>>;
  /** Reads the pending content (whole chunk), for forwarding full-chunk replaces to a syncing successor. */
  readPending(chainId: number, chunkId: Buffer): Promise<Buffer>;
  /**
   * Applies an update as a pending version, durably (data and metadata on disk before resolving);
   * with `commitChainVer`, as the committed version instead (a committed remove deletes the chunk).
   */
  update(request: UpdateRequest): Promise<ChunkMeta>;
  /**
   * Makes the pending version `updateVer` the committed one, durably; stale versions are no-ops.
   * Committing a pending remove deletes the chunk and returns its final meta (length 0); a later
   * commit for it fails with NOT_FOUND, which the caller treats as already done.
   */
  commit(chainId: number, chunkId: Buffer, updateVer: number, chainVer: number): Promise<ChunkMeta>;
  /**
   * Drops a pending version (used when a LASTSRV target resets uncommitted chunks). A chunk that
   * never committed disappears.
   */
  abortPending(chainId: number, chunkId: Buffer): Promise<void>;
  /** Deletes every chunk of a chain (target removal); the caller stops updates to it first. */
  dropChain(chainId: number): Promise<void>;
  spaceInfo(): SpaceInfo;
  close(): Promise<void>;
}
