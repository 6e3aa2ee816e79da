// Reads that storage servers on this host write straight into the caller's shared memory: the
// same-host stand-in for RDMA (3FS's storage RDMA-writes into a client's registered buffer). A
// region is a memfd sealed against shrinking, named for the server by /proc/<pid>/fd/<n>; each
// storage node with a unix socket on this host maps it once (mapRegion over that socket), and
// batchReadToRegion then puts every read's bytes at its place in the region, with no payload on
// the wire and no copy on either side. Reads of many callers into one region share calls per node
// (read-coalescer.ts). A read no local node serves, or one a local node could not serve now, is
// left to the caller's ordinary path (TCP, payload copied), which retries other replicas.
import { ThreeFsError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import {
  type ChainInfo,
  type NodeInfo,
  type RoutingInfo,
  sameHostAddress,
} from '../common/routing.js';
import { routingIndex } from '../common/routing-index.js';
import type { RpcClientPool } from '../common/rpc/index.js';
import { StorageService } from '../common/services/storage.js';
import {
  chooseReplica,
  JOIN_BOUND,
  placedOutcomes,
  ReadCoalescer,
  type ReadOutcome,
  type WireRead,
} from './read-coalescer.js';

/** A shared region, as the storage servers will open it. */
export interface SharedRegion {
  /** /proc/<pid>/fd/<n> of a descriptor this process keeps open for the region's life. */
  path: string;
  /** Bytes of the whole file. */
  bytes: number;
}

/** This process's descriptor `fd` of a region, named as storage servers on this host open it. */
export function regionOfDescriptor(fd: number, bytes: number): SharedRegion {
  return { path: `/proc/${process.pid}/fd/${fd}`, bytes };
}

export interface RegionRead {
  chainId: number;
  chunkId: Buffer;
  offset: number;
  length: number;
  /** Where in the region this read's bytes go. */
  target: number;
}

interface RegionIo extends WireRead {
  target: number;
  address: string;
  region: SharedRegion;
}

/** Reads per call: there is no payload, so a call may carry many. */
const MAX_IOS_PER_CALL = 1024;
const MAX_BYTES_PER_CALL = 64 * 1024 * 1024;

export class RegionReads {
  /** Per node address, per region path: the region id there (a promise while mapping). */
  private readonly mapped = new Map<string, Map<string, Promise<number>>>();
  /** Per list of a chain's serving nodes (RoutingIndex.servingNodes): those on this host. */
  private readonly local = new WeakMap<readonly NodeInfo[], readonly string[]>();
  /** Per region path, per node address: the coalescer's key (callKey), one string per pair. */
  private readonly keys = new Map<string, Map<string, string>>();
  private readonly coalescer = new ReadCoalescer<RegionIo, ReadOutcome>(
    (_key, ios) => this.send(ios),
    { maxIos: MAX_IOS_PER_CALL, maxBytes: MAX_BYTES_PER_CALL },
    () => ({ kind: 'retry' }), // any failed call: those reads take the ordinary path
  );

  constructor(
    private readonly pool: RpcClientPool,
    private readonly attemptTimeoutMs: number,
    private readonly log: Logger,
  ) {}

  /**
   * Reads one chunk range into `region` through a storage node on this host: the bytes placed
   * (fewer at the end of a chunk), 0 for a chunk that does not exist, or undefined when this
   * path did not serve it.
   */
  async read(
    info: RoutingInfo,
    read: RegionRead,
    region: SharedRegion,
  ): Promise<number | undefined> {
    if (read.target < 0 || read.target + read.length > region.bytes)
      throw new ThreeFsError('INVALID_ARGUMENT', 'read target outside the region');
    const chain = routingIndex(info).chain(read.chainId);
    const address = chain && this.localReplica(info, chain, region);
    if (!chain || address === undefined) return undefined;
    const outcome = await this.coalescer.read(this.callKey(address, region), {
      chainId: read.chainId,
      chainVersion: chain.chainVersion,
      chunkId: read.chunkId,
      offset: read.offset,
      length: read.length,
      target: read.target,
      address,
      region,
    });
    if (outcome.kind === 'placed') return outcome.length;
    if (outcome.kind === 'missing') return 0;
    return undefined;
  }

  /** Unmaps the region on every node it was mapped on (best effort: a gone node unmapped it). */
  async release(region: SharedRegion): Promise<void> {
    this.keys.delete(region.path);
    const pending: Array<Promise<unknown>> = [];
    for (const [address, regions] of this.mapped) {
      const id = regions.get(region.path);
      if (id === undefined) continue;
      regions.delete(region.path);
      pending.push(
        id
          .then((regionId) =>
            this.pool
              .get(address)
              .call(
                StorageService.methods.unmapRegion,
                { regionId },
                { timeoutMs: this.attemptTimeoutMs },
              ),
          )
          .catch(() => undefined),
      );
    }
    await Promise.all(pending);
  }

  /**
   * A SERVING replica on a node of this host with a unix socket, if any: one whose call into
   * `region` this turn has room for the read, or else a random one (chooseReplica).
   */
  private localReplica(info: RoutingInfo, chain: ChainInfo, region: SharedRegion) {
    const local = this.localAddresses(info, chain);
    if (local.length <= 1) return local[0];
    const fills = local.map((address) =>
      this.coalescer.fill(this.callKey(address, region), JOIN_BOUND),
    );
    return local[chooseReplica(fills)];
  }

  /** Where `chain` has SERVING replicas on nodes of this host, found once per routing copy. */
  private localAddresses(info: RoutingInfo, chain: ChainInfo): readonly string[] {
    const serving = routingIndex(info).servingNodes(chain.chainId);
    let addresses = this.local.get(serving);
    if (!addresses) {
      const found: string[] = [];
      for (const node of serving) {
        const address = sameHostAddress(node);
        if (address) found.push(address);
      }
      this.local.set(serving, (addresses = found));
    }
    return addresses;
  }

  /** The coalescer's key of a call: reads into one region through one node. */
  private callKey(address: string, region: SharedRegion): string {
    let keys = this.keys.get(region.path);
    if (!keys) this.keys.set(region.path, (keys = new Map()));
    let key = keys.get(address);
    if (key === undefined) keys.set(address, (key = `${address}\n${region.path}`));
    return key;
  }

  private regionId(address: string, region: SharedRegion): Promise<number> {
    let regions = this.mapped.get(address);
    if (!regions) {
      regions = new Map();
      this.mapped.set(address, regions);
    }
    let id = regions.get(region.path);
    if (!id) {
      id = this.pool
        .get(address)
        .call(
          StorageService.methods.mapRegion,
          { path: region.path, bytes: region.bytes },
          { timeoutMs: this.attemptTimeoutMs },
        )
        .then(({ body }) => body.regionId);
      regions.set(region.path, id);
      // A refusal is not remembered: the next batch asks again (the node may have restarted).
      id.catch(() => regions.delete(region.path));
    }
    return id;
  }

  /** One call: every read of `ios` shares one node and one region. */
  private async send(ios: RegionIo[]): Promise<Array<ReadOutcome | Error>> {
    const { address, region } = ios[0]!;
    try {
      const regionId = await this.regionId(address, region);
      const { body } = await this.pool.get(address).call(
        StorageService.methods.batchReadToRegion,
        {
          regionId,
          ios: ios.map(({ chainId, chainVersion, chunkId, offset, length, target }) => ({
            chainId,
            chainVersion,
            chunkId,
            offset,
            length,
            target,
          })),
        },
        { timeoutMs: this.attemptTimeoutMs },
      );
      return placedOutcomes(ios, body.results).map((o) =>
        o instanceof Error ? { kind: 'retry' } : o,
      );
    } catch (err) {
      // The node restarted or the connection was replaced: its mapping of the region is gone.
      if (err instanceof ThreeFsError && err.code === 'NOT_FOUND')
        this.mapped.get(address)?.delete(region.path);
      this.log.debug({ err, address }, 'read into shared memory failed; using the ordinary path');
      throw err;
    }
  }
}
