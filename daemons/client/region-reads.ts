// Reads that storage servers on this host write straight into the caller's shared memory: the
// same-host stand-in for RDMA (3FS's storage RDMA-writes into a client's registered buffer). A
// region is a memfd sealed against shrinking, named for the server by /proc/<pid>/fd/<n>; each
// storage node with a unix socket on this host maps it once (mapRegion over that socket), and
// batchReadToRegion then puts every read's bytes at its place in the region, with no payload on
// the wire and no copy on either side. Reads no local node can serve are left to the caller's
// ordinary path (TCP, payload copied), and so is any read that failed here for a reason another
// replica or a retry might not have.
import { hostname } from 'node:os';
import { ThreeFsError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import type { RoutingInfo } from '../common/routing.js';
import type { RpcClientPool } from '../common/rpc/index.js';
import { StorageService } from '../common/services/storage.js';

/** A shared region, as the storage servers will open it. */
export interface SharedRegion {
  /** /proc/<pid>/fd/<n> of a descriptor this process keeps open for the region's life. */
  path: string;
  /** Bytes of the whole file. */
  bytes: number;
}

export interface RegionRead {
  chainId: number;
  chunkId: Buffer;
  offset: number;
  length: number;
  /** Where in the region this read's bytes go. */
  target: number;
}

/** Per read: bytes placed (a short read ends at its chunk's end), 0 for a missing chunk, or
 * undefined when this path did not serve it. */
export type RegionReadResult = number | undefined;

const MAX_IOS_PER_CALL = 1024;

export class RegionReads {
  private readonly host = hostname();
  /** Per node address, per region path: the region id there (a promise while mapping). */
  private readonly mapped = new Map<string, Map<string, Promise<number>>>();

  constructor(
    private readonly pool: RpcClientPool,
    private readonly attemptTimeoutMs: number,
    private readonly log: Logger,
  ) {}

  /** The unix address of a node that serves reads into shared memory on this host, if any. */
  localAddressOf(info: RoutingInfo, nodeId: number): string | undefined {
    const node = info.nodes.find((n) => n.nodeId === nodeId);
    if (!node?.localAddress || node.hostname !== this.host) return undefined;
    return node.localAddress;
  }

  /** Reads what local nodes can serve into `region`; see RegionReadResult for the rest. */
  async read(
    info: RoutingInfo,
    reads: readonly RegionRead[],
    region: SharedRegion,
  ): Promise<RegionReadResult[]> {
    const results: RegionReadResult[] = new Array(reads.length);
    const byNode = new Map<string, number[]>();
    reads.forEach((read, index) => {
      if (read.target < 0 || read.target + read.length > region.bytes)
        throw new ThreeFsError('INVALID_ARGUMENT', `read target outside the region`);
      const address = this.localReplica(info, read.chainId);
      if (address === undefined) return;
      const list = byNode.get(address);
      if (list) list.push(index);
      else byNode.set(address, [index]);
    });
    await Promise.all(
      [...byNode].map(async ([address, indexes]) => {
        for (let at = 0; at < indexes.length; at += MAX_IOS_PER_CALL) {
          const slice = indexes.slice(at, at + MAX_IOS_PER_CALL);
          await this.readOnNode(info, address, slice, reads, region, results);
        }
      }),
    );
    return results;
  }

  /** Unmaps the region on every node it was mapped on (best effort: a gone node unmapped it). */
  async release(region: SharedRegion): Promise<void> {
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

  private localReplica(info: RoutingInfo, chainId: number): string | undefined {
    const chain = info.chains.find((c) => c.chainId === chainId);
    const local: string[] = [];
    for (const t of chain?.targets ?? []) {
      if (t.state !== 'SERVING') continue;
      const nodeId = info.targets.find((x) => x.targetId === t.targetId)?.nodeId;
      const address = nodeId === undefined ? undefined : this.localAddressOf(info, nodeId);
      if (address) local.push(address);
    }
    return local.length === 0 ? undefined : local[(Math.random() * local.length) | 0];
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

  private async readOnNode(
    info: RoutingInfo,
    address: string,
    indexes: number[],
    reads: readonly RegionRead[],
    region: SharedRegion,
    results: RegionReadResult[],
  ): Promise<void> {
    try {
      const regionId = await this.regionId(address, region);
      const { body } = await this.pool.get(address).call(
        StorageService.methods.batchReadToRegion,
        {
          regionId,
          ios: indexes.map((i) => {
            const read = reads[i]!;
            const chain = info.chains.find((c) => c.chainId === read.chainId);
            return { ...read, chainVersion: chain?.chainVersion ?? 0 };
          }),
        },
        { timeoutMs: this.attemptTimeoutMs },
      );
      body.results.forEach((result, k) => {
        const index = indexes[k]!;
        if (result.status === 'ok') results[index] = result.length;
        else if (result.status === 'NOT_FOUND') results[index] = 0;
        // anything else goes the ordinary way, which retries other replicas and refreshes routing
      });
    } catch (err) {
      // The node restarted or the connection was replaced: its mapping of the region is gone.
      if (err instanceof ThreeFsError && err.code === 'NOT_FOUND')
        this.mapped.get(address)?.delete(region.path);
      this.log.debug({ err, address }, 'read into shared memory failed; using the ordinary path');
    }
  }
}
