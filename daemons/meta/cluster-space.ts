// Capacity and free space of the whole cluster for statfs outside quota directories: the sum of
// every connected storage node's disks (storage's spaceInfo), cached like 3FS's statfs (60 s).
import { ThreeFsError } from '../common/errors.js';
import type { RoutingInfo } from '../common/routing.js';
import type { RpcClientPool } from '../common/rpc/index.js';
import { StorageService } from '../common/services/storage.js';

export interface ClusterSpace {
  totalBytes: number;
  freeBytes: number;
}

export class ClusterSpaceCache {
  private cached: { at: number; space: ClusterSpace } | undefined;
  private inFlight: Promise<ClusterSpace> | undefined;

  constructor(
    private readonly pool: RpcClientPool,
    private readonly routing: () => RoutingInfo,
    private readonly ttlMs: number,
  ) {}

  get(): Promise<ClusterSpace> {
    if (this.cached && Date.now() - this.cached.at < this.ttlMs)
      return Promise.resolve(this.cached.space);
    this.inFlight ??= this.fetch().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  private async fetch(): Promise<ClusterSpace> {
    const nodes = this.routing().nodes.filter(
      (n) => n.type === 'STORAGE' && n.status === 'HEARTBEAT_CONNECTED',
    );
    const replies = await Promise.allSettled(
      nodes.map((n) =>
        this.pool.get(n.address).call(StorageService.methods.spaceInfo, {}, { timeoutMs: 5_000 }),
      ),
    );
    const space = { totalBytes: 0, freeBytes: 0 };
    for (const reply of replies) {
      if (reply.status !== 'fulfilled') continue;
      for (const disk of reply.value.body.disks) {
        space.totalBytes += disk.capacityBytes;
        space.freeBytes += disk.freeBytes;
      }
    }
    if (nodes.length > 0 && replies.every((r) => r.status === 'rejected')) {
      throw new ThreeFsError('UNAVAILABLE', 'no storage node answered spaceInfo');
    }
    this.cached = { at: Date.now(), space };
    return space;
  }
}
