// The client side of the data path (brief §3.2–§3.4, §6): computes chunk → chain from the file's
// layout, writes to each chain's head through an update channel so a retry runs once, reads from
// a random up-to-date replica in batches per storage node, and retries retryable errors after a
// routing refresh with bounded backoff. File-level helpers (length, removal) serve meta too.
import { randomUUID } from 'node:crypto';
import type { Registry } from 'prom-client';
import type { z } from 'zod';
import { crc32c } from '../common/crc32c.js';
import { ThreeFsError } from '../common/errors.js';
import {
  chainOfChunk,
  chunkId,
  chunkIdRange,
  type Layout,
  parseChunkId,
  splitIntoChunks,
  stripeChains,
} from '../common/layout.js';
import { setBounded } from '../common/bounded-map.js';
import type { Logger } from '../common/log.js';
import {
  type ChainInfo,
  type ChainTableVersion,
  findChainTable,
  type RoutingInfo,
} from '../common/routing.js';
import { routingIndex } from '../common/routing-index.js';
import { RpcClientPool } from '../common/rpc/index.js';
import { StorageService, type UpdateResult } from '../common/services/storage.js';
import {
  chooseReplica,
  JOIN_BOUND,
  payloadOutcomes,
  ReadCoalescer,
  type ReadOutcome,
  retryOnRetryable,
} from './read-coalescer.js';
import { RegionReads, type SharedRegion } from './region-reads.js';
import type { RoutingCache } from './routing-cache.js';

export type UpdateReply = z.output<typeof UpdateResult>;

export interface StorageClientOptions {
  routing: RoutingCache;
  clusterId: string;
  token?: string | undefined;
  log: Logger;
  /** Where its RPC client metrics go (a daemon's /metrics); none without. */
  registry?: Registry;
  /** Give up retrying one operation after this long (3FS: 60 s). */
  retryTotalMs?: number;
  /** Deadline of one attempt. */
  attemptTimeoutMs?: number;
  /** Update channels this client may have in flight (each carries one update at a time). */
  channels?: number;
  /**
   * Largest batch of reads sent to one node in one call (3FS: 128 IOs, 4 MiB). Bytes default to
   * 1 MiB: small reads still share calls, while each chunk-sized read is its own call, so its
   * reply completes on its own and the server sends the engine's buffer without concatenating.
   */
  maxBatchIos?: number;
  maxBatchBytes?: number;
}

export interface ChunkRead {
  chainId: number;
  chunkId: Buffer;
  offset: number;
  length: number;
}

/** Bytes read (shorter at the end of a chunk), or undefined when the chunk does not exist. */
export type ChunkReadResult = Buffer | undefined;

/** Stripes remembered per layout; a bound, since each file may have its own seed. */
const MAX_CACHED_STRIPES = 4_096;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Allocates update channels; each carries one update at a time with an increasing seqnum. */
class ChannelPool {
  private readonly free: number[];
  private readonly seqnums = new Map<number, number>();
  private readonly waiters: Array<(channel: number) => void> = [];

  constructor(size: number) {
    this.free = Array.from({ length: size }, (_, i) => size - i);
  }

  async acquire(): Promise<{ channelId: number; seqnum: number }> {
    const channelId =
      this.free.pop() ?? (await new Promise<number>((resolve) => this.waiters.push(resolve)));
    const seqnum = (this.seqnums.get(channelId) ?? 0) + 1;
    this.seqnums.set(channelId, seqnum);
    return { channelId, seqnum };
  }

  release(channelId: number): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter(channelId);
    else this.free.push(channelId);
  }
}

export class StorageClient {
  readonly clientId = randomUUID();
  private readonly pool: RpcClientPool;
  private readonly channels: ChannelPool;
  private readonly retryTotalMs: number;
  private readonly attemptTimeoutMs: number;
  private readonly stripes = new Map<string, readonly number[]>();
  /** The same stripes by layout object, with the table they were computed from (knownStripe). */
  private readonly stripesByLayout = new WeakMap<
    Layout,
    { table: ChainTableVersion | undefined; stripe: readonly number[] }
  >();
  private readonly coalescer: ReadCoalescer;
  private readonly regionReads: RegionReads;

  constructor(private readonly options: StorageClientOptions) {
    this.pool = new RpcClientPool({
      clusterId: options.clusterId,
      token: options.token,
      log: options.log,
      registry: options.registry,
      name: 'storage-client',
    });
    this.channels = new ChannelPool(options.channels ?? 256);
    this.retryTotalMs = options.retryTotalMs ?? 60_000;
    this.attemptTimeoutMs = options.attemptTimeoutMs ?? 10_000;
    this.coalescer = new ReadCoalescer(
      async (address, ios) => {
        const { body, payload } = await this.pool
          .get(address)
          .call(StorageService.methods.batchRead, { ios }, { timeoutMs: this.attemptTimeoutMs });
        return payloadOutcomes(ios, body.results, payload);
      },
      { maxIos: options.maxBatchIos ?? 128, maxBytes: options.maxBatchBytes ?? 1024 * 1024 },
      retryOnRetryable,
    );
    this.regionReads = new RegionReads(this.pool, this.attemptTimeoutMs, options.log);
  }

  async close(): Promise<void> {
    await this.pool.close();
  }

  // ---- routing helpers ------------------------------------------------------------------------

  private async routing(): Promise<RoutingInfo> {
    const current = this.options.routing.current;
    return current.routingVersion > 0 ? current : this.options.routing.refresh();
  }

  private chainOf(info: RoutingInfo, chainId: number) {
    const chain = routingIndex(info).chain(chainId);
    if (!chain)
      throw new ThreeFsError('ROUTING_VERSION_MISMATCH', `chain ${chainId} is not in routing info`);
    return chain;
  }

  private addressOf(info: RoutingInfo, targetId: number): string {
    const node = routingIndex(info).nodeOfTarget(targetId);
    if (!node?.address)
      throw new ThreeFsError('ROUTING_VERSION_MISMATCH', `no address for target ${targetId}`);
    return node.address;
  }

  /** Where a chain's SERVING replicas are: a read may go to any of them. */
  private servingAddresses(info: RoutingInfo, chain: ChainInfo): string[] {
    const addresses: string[] = [];
    for (const node of routingIndex(info).servingNodes(chain.chainId))
      if (node.address) addresses.push(node.address);
    if (addresses.length === 0)
      throw new ThreeFsError('UNAVAILABLE', `chain ${chain.chainId} has no SERVING replica`);
    return addresses;
  }

  /** Runs `attempt` until it succeeds, a non-retryable error occurs, or the time runs out. */
  private async withRetries<T>(
    what: string,
    attempt: (info: RoutingInfo, timeoutMs: number) => Promise<T>,
  ): Promise<T> {
    const deadline = Date.now() + this.retryTotalMs;
    let backoff = 20;
    for (let tries = 1; ; tries++) {
      const info = await this.routing();
      try {
        return await attempt(
          info,
          Math.max(1, Math.min(this.attemptTimeoutMs, deadline - Date.now())),
        );
      } catch (err) {
        const retryable = err instanceof ThreeFsError && err.retryable;
        if (!retryable || Date.now() + backoff >= deadline) {
          if (retryable)
            throw new ThreeFsError(
              (err as ThreeFsError).code,
              `${what}: gave up after ${tries} attempts: ${(err as Error).message}`,
            );
          throw err;
        }
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 1_000);
        await this.options.routing.refresh().catch(() => undefined);
      }
    }
  }

  // ---- chunk operations -----------------------------------------------------------------------

  /** Writes bytes into one chunk through its chain's head; retries run at most once (channels). */
  async writeChunk(
    chainId: number,
    id: Buffer,
    offset: number,
    data: Buffer,
    chunkSize: number,
  ): Promise<UpdateReply> {
    // The one pass over the bytes on this side: the frame's CRC is combined from this checksum.
    const checksum = crc32c(data);
    return this.update(
      chainId,
      id,
      chunkSize,
      { kind: 'write', offset, length: data.length, checksum },
      data,
    );
  }

  async truncateChunk(
    chainId: number,
    id: Buffer,
    length: number,
    chunkSize: number,
  ): Promise<UpdateReply> {
    return this.update(chainId, id, chunkSize, {
      kind: 'truncate',
      offset: 0,
      length,
      checksum: 0,
    });
  }

  private async update(
    chainId: number,
    id: Buffer,
    chunkSize: number,
    op: { kind: 'write' | 'truncate' | 'remove'; offset: number; length: number; checksum: number },
    payload?: Buffer,
  ): Promise<UpdateReply> {
    const { channelId, seqnum } = await this.channels.acquire();
    try {
      return await this.withRetries(`update of chain ${chainId}`, async (info, timeoutMs) => {
        const chain = this.chainOf(info, chainId);
        const head = chain.targets[0];
        if (!head || head.state !== 'SERVING') {
          throw new ThreeFsError('UNAVAILABLE', `chain ${chainId} has no SERVING head`);
        }
        const { body } = await this.pool.get(this.addressOf(info, head.targetId)).call(
          StorageService.methods.write,
          {
            chainId,
            chainVersion: chain.chainVersion,
            chunkId: id,
            ...op,
            chunkSize,
            tag: { clientId: this.clientId, channelId, seqnum, requestId: seqnum },
          },
          { payload, payloadCrc: payload ? op.checksum : undefined, timeoutMs },
        );
        return body;
      });
    } finally {
      this.channels.release(channelId);
    }
  }

  /**
   * Reads a batch of chunk ranges: each chain served by a SERVING replica (one already getting a
   * call this turn if it has room, else a random one: chooseReplica), the reads of every caller
   * queued per storage node and sent together (read-coalescer.ts); a read that a node cannot
   * serve now is retried on another replica or after a routing refresh.
   */
  async readChunks(reads: readonly ChunkRead[]): Promise<ChunkReadResult[]> {
    const results: ChunkReadResult[] = new Array(reads.length);
    let pending = reads.map((_, index) => index);
    const deadline = Date.now() + this.retryTotalMs;
    for (let round = 0; pending.length > 0; round++) {
      const info = round === 0 ? await this.routing() : await this.options.routing.refresh();
      const retry: number[] = [];
      await Promise.all(
        pending.map(async (index) => {
          const read = reads[index]!;
          let outcome: ReadOutcome;
          try {
            const chain = this.chainOf(info, read.chainId);
            const addresses = this.servingAddresses(info, chain);
            const fills = addresses.map((address) => this.coalescer.fill(address, JOIN_BOUND));
            const address = addresses[chooseReplica(fills)]!;
            // Only the wire fields: callers' reads may carry more (readFilesInto's targets).
            outcome = await this.coalescer.read(address, {
              chainId: read.chainId,
              chainVersion: chain.chainVersion,
              chunkId: read.chunkId,
              offset: read.offset,
              length: read.length,
            });
          } catch (err) {
            if (!(err instanceof ThreeFsError) || !err.retryable) throw err;
            outcome = { kind: 'retry' };
          }
          if (outcome.kind === 'retry') retry.push(index);
          else if (outcome.kind === 'data') results[index] = outcome.data;
          else if (outcome.kind === 'missing') results[index] = undefined;
          else throw new ThreeFsError('INTERNAL', 'a payload read came back placed');
        }),
      );
      pending = retry;
      if (pending.length > 0) {
        if (Date.now() >= deadline)
          throw new ThreeFsError(
            'UNAVAILABLE',
            `${pending.length} chunk reads failed until the retry limit`,
          );
        await sleep(Math.min(20 * 2 ** round, 1_000));
      }
    }
    return results;
  }

  async queryLastChunk(chainId: number, begin: Buffer, end: Buffer) {
    return this.withRetries(`last-chunk query on chain ${chainId}`, async (info, timeoutMs) => {
      const chain = this.chainOf(info, chainId);
      const serving = chain.targets.filter((t) => t.state === 'SERVING');
      if (serving.length === 0)
        throw new ThreeFsError('UNAVAILABLE', `chain ${chainId} has no SERVING replica`);
      const pick = serving[(Math.random() * serving.length) | 0]!;
      const { body } = await this.pool
        .get(this.addressOf(info, pick.targetId))
        .call(
          StorageService.methods.queryLastChunk,
          { chainId, chainVersion: chain.chainVersion, begin, end },
          { timeoutMs },
        );
      return body;
    });
  }

  /** Removes every chunk of [begin, end) on a chain, through its head, a batch at a time. */
  async removeChunks(chainId: number, begin: Buffer, end: Buffer): Promise<number> {
    let removed = 0;
    for (let round = 0; round < 1_000_000; round++) {
      const { channelId, seqnum } = await this.channels.acquire();
      try {
        const body = await this.withRetries(
          `chunk removal on chain ${chainId}`,
          async (info, timeoutMs) => {
            const chain = this.chainOf(info, chainId);
            const head = chain.targets[0];
            if (!head || head.state !== 'SERVING')
              throw new ThreeFsError('UNAVAILABLE', `chain ${chainId} has no SERVING head`);
            const reply = await this.pool.get(this.addressOf(info, head.targetId)).call(
              StorageService.methods.removeChunks,
              {
                chainId,
                chainVersion: chain.chainVersion,
                begin,
                end,
                tag: { clientId: this.clientId, channelId, seqnum, requestId: seqnum },
              },
              { timeoutMs },
            );
            return reply.body;
          },
        );
        removed += body.removed;
        if (!body.more) return removed;
      } finally {
        this.channels.release(channelId);
      }
    }
    throw new ThreeFsError('INTERNAL', 'chunk removal did not converge');
  }

  // ---- file-level helpers ---------------------------------------------------------------------

  /**
   * The stripe of this layout object when it was computed from the chain table the current
   * routing holds: no await, no key to build (every read of an open file asks).
   */
  private knownStripe(layout: Layout): readonly number[] | undefined {
    const hit = this.stripesByLayout.get(layout);
    const info = this.options.routing.current;
    if (!hit || info.routingVersion === 0) return undefined;
    const table = routingIndex(info).chainTable(layout.chainTableId, layout.chainTableVersion);
    return table === hit.table ? hit.stripe : undefined;
  }

  private async stripe(layout: Layout): Promise<readonly number[]> {
    const known = this.knownStripe(layout);
    if (known) return known;
    let info = await this.routing();
    let table = findChainTable(info, layout.chainTableId, layout.chainTableVersion);
    if (!table && layout.chains.kind === 'range') {
      info = await this.options.routing.refresh();
      table = findChainTable(info, layout.chainTableId, layout.chainTableVersion);
    }
    if (layout.chains.kind === 'range' && !table) {
      throw new ThreeFsError(
        'NOT_FOUND',
        `chain table ${layout.chainTableId} version ${layout.chainTableVersion} is unknown`,
      );
    }
    // The stripe is a pure function of the layout and the table version (the shuffle is frozen),
    // and every read and write of a file needs it: compute it once per layout.
    const key = `${layout.chainTableId}/${table?.version ?? 0}/${layout.stripeSize}/${JSON.stringify(layout.chains)}`;
    let stripe = this.stripes.get(key);
    if (!stripe) {
      stripe = Object.freeze(stripeChains(layout, table?.chainIds ?? []));
      setBounded(this.stripes, key, stripe, MAX_CACHED_STRIPES, 'stripe cache');
    }
    this.stripesByLayout.set(layout, { table, stripe });
    return stripe;
  }

  /** Exact length: the furthest end of the last chunk on any of the first `dynStripe` chains. */
  async fileLength(layout: Layout, inodeId: number, dynStripe: number): Promise<number> {
    const chains = (await this.stripe(layout)).slice(0, Math.max(1, dynStripe));
    const { begin, end } = chunkIdRange(inodeId);
    const lasts = await Promise.all(
      [...new Set(chains)].map((chainId) => this.queryLastChunk(chainId, begin, end)),
    );
    let length = 0;
    for (const last of lasts) {
      if (!last.lastChunkId) continue;
      const { chunkIndex } = parseChunkId(last.lastChunkId);
      length = Math.max(length, chunkIndex * layout.chunkSize + last.lastChunkLength);
    }
    return length;
  }

  /** Removes chunks with index >= fromChunkIndex from each of the first `dynStripe` chains. */
  async removeFileChunks(
    layout: Layout,
    inodeId: number,
    fromChunkIndex: number,
    dynStripe: number,
  ): Promise<void> {
    const chains = [...new Set((await this.stripe(layout)).slice(0, Math.max(1, dynStripe)))];
    const { begin, end } = chunkIdRange(inodeId, fromChunkIndex);
    await Promise.all(chains.map((chainId) => this.removeChunks(chainId, begin, end)));
  }

  /** Sets one chunk's length (cutting or zero-extending it): the partial chunk at a truncate. */
  async truncateFileChunk(
    layout: Layout,
    inodeId: number,
    chunkIndex: number,
    length: number,
  ): Promise<void> {
    const stripe = await this.stripe(layout);
    await this.truncateChunk(
      chainOfChunk(stripe, chunkIndex),
      chunkId(inodeId, chunkIndex),
      length,
      layout.chunkSize,
    );
  }

  /** Writes a byte range of a file: split into chunk writes, run in parallel across chains. */
  async writeFile(layout: Layout, inodeId: number, offset: number, data: Buffer): Promise<void> {
    const stripe = await this.stripe(layout);
    const pieces = splitIntoChunks(offset, data.length, layout.chunkSize);
    await Promise.all(
      pieces.map((p) =>
        this.writeChunk(
          chainOfChunk(stripe, p.chunkIndex),
          chunkId(inodeId, p.chunkIndex),
          p.offset,
          data.subarray(p.bufferOffset, p.bufferOffset + p.length),
          layout.chunkSize,
        ),
      ),
    );
  }

  /**
   * Reads a byte range of a file of length `fileLength` into a new Buffer; holes (missing chunks
   * or bytes past a chunk's end) inside the file length read as zeros.
   */
  async readFile(
    layout: Layout,
    inodeId: number,
    offset: number,
    length: number,
    fileLength: number,
  ): Promise<Buffer> {
    const end = Math.min(offset + length, fileLength);
    if (end <= offset) return Buffer.alloc(0);
    const out = Buffer.allocUnsafe(end - offset);
    await this.readFileInto(layout, inodeId, offset, out, fileLength);
    return out;
  }

  /**
   * Many readFileInto calls as one readChunks batch (the USRBIO path: a ring's batch of reads,
   * possibly of several files, goes to each storage node as one request). Returns the bytes read
   * per item; a failure fails the whole batch, as readChunks does.
   *
   * With a `region` (the targets lie in that shared memory, item.regionOffset being where each
   * target starts in it), storage servers on this host write the bytes there themselves
   * (region-reads.ts); the rest take the ordinary path.
   *
   * `onItem(i, bytes)` is told of each item once its bytes are in place (holes zero-filled), as
   * its storage node answers, so a caller can complete it before slower nodes answer for the
   * rest; items not reported when the promise rejects have failed.
   */
  async readFilesInto(
    items: ReadonlyArray<{
      layout: Layout;
      inodeId: number;
      offset: number;
      target: Buffer;
      fileLength: number;
      regionOffset?: number;
    }>,
    region?: SharedRegion,
    onItem?: (index: number, bytes: number) => void,
  ): Promise<number[]> {
    const reads: Array<ChunkRead & { target: number }> = [];
    const places: Array<{ item: number; bufferOffset: number; length: number }> = [];
    const counts: number[] = [];
    /** Per item, its chunk reads not yet in place. */
    const unplaced: number[] = [];
    for (let index = 0; index < items.length; index++) {
      const item = items[index]!;
      const end = Math.min(item.offset + item.target.length, item.fileLength);
      counts.push(Math.max(0, end - item.offset));
      unplaced.push(0);
      if (end <= item.offset) continue;
      const stripe = this.knownStripe(item.layout) ?? (await this.stripe(item.layout));
      for (const p of splitIntoChunks(item.offset, end - item.offset, item.layout.chunkSize)) {
        reads.push({
          chainId: chainOfChunk(stripe, p.chunkIndex),
          chunkId: chunkId(item.inodeId, p.chunkIndex),
          offset: p.offset,
          length: p.length,
          target: (item.regionOffset ?? 0) + p.bufferOffset,
        });
        places.push({ item: index, bufferOffset: p.bufferOffset, length: p.length });
        unplaced[index]!++;
      }
    }
    if (onItem) counts.forEach((n, i) => unplaced[i] === 0 && onItem(i, n));
    /** Read `i` has `n` bytes in place: zero the rest of its range (a hole or the file's end). */
    const settle = (i: number, n: number) => {
      const place = places[i]!;
      const target = items[place.item]!.target;
      if (n < place.length)
        target.fill(0, place.bufferOffset + n, place.bufferOffset + place.length);
      if (--unplaced[place.item]! === 0) onItem?.(place.item, counts[place.item]!);
    };
    // Bytes placed per read by storage itself (shared memory), undefined for the ordinary path.
    const info = region && reads.length > 0 ? await this.routing() : undefined;
    const placed: Array<number | undefined> =
      region && info
        ? await Promise.all(
            reads.map((read, i) =>
              this.regionReads.read(info, read, region).then((n) => {
                if (n !== undefined) settle(i, n);
                return n;
              }),
            ),
          )
        : [];
    const ordinary: number[] = [];
    for (let i = 0; i < reads.length; i++) if (placed[i] === undefined) ordinary.push(i);
    const fetched =
      ordinary.length > 0 ? await this.readChunks(ordinary.map((i) => reads[i]!)) : [];
    ordinary.forEach((readIndex, k) => {
      const data = fetched[k];
      const place = places[readIndex]!;
      settle(
        readIndex,
        data ? data.copy(items[place.item]!.target, place.bufferOffset, 0, place.length) : 0,
      );
    });
    // Every read took one of the two paths, so every item has been reported.
    if (unplaced.some((n) => n !== 0))
      throw new ThreeFsError('INTERNAL', 'a chunk read was neither placed nor fetched');
    return counts;
  }

  /** Forgets a shared region: storage servers that mapped it unmap it. */
  releaseRegion(region: SharedRegion): Promise<void> {
    return this.regionReads.release(region);
  }

  /**
   * Reads into the caller's buffer from `offset`, up to its length or the file's end; returns
   * the bytes read. Holes inside the file length are zero-filled; each byte is copied once, from
   * the reply payload into `target`.
   */
  async readFileInto(
    layout: Layout,
    inodeId: number,
    offset: number,
    target: Buffer,
    fileLength: number,
    shared?: { region: SharedRegion; offset: number },
  ): Promise<number> {
    const [n] = await this.readFilesInto(
      [{ layout, inodeId, offset, target, fileLength, regionOffset: shared?.offset }],
      shared?.region,
    );
    return n ?? 0;
  }
}
