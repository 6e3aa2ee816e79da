// Shared memory that same-host clients lend this storage server so reads land in it directly
// (batchReadToRegion): the stand-in for RDMA writes into a client's registered buffer when client
// and server share a host. Only connections from the unix socket listener may map regions; each
// region belongs to the connection that mapped it, is used only by it, and is unmapped when it
// says so or when the connection closes. Bounded per connection.
import { ThreeFsError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import type { ConnectionScope } from '../common/rpc/index.js';

export const MAX_REGIONS_PER_CONNECTION = 256;

/** The native side (engine/chunk-io.ts): injectable so the rules are tested without memfds. */
export interface RegionMapper {
  map(path: string, bytes: number): number;
  unmap(id: number): boolean;
}

interface Region {
  connection: number;
  bytes: number;
}

export class LocalRegions {
  private readonly regions = new Map<number, Region>();
  private readonly byConnection = new Map<number, Set<number>>();

  constructor(
    private readonly mapper: RegionMapper,
    private readonly log: Logger,
  ) {}

  get count(): number {
    return this.regions.size;
  }

  map(connection: ConnectionScope, path: string, bytes: number): number {
    if (!connection.local) {
      throw new ThreeFsError(
        'PERMISSION_DENIED',
        'shared regions are mapped only for clients on this host (the unix socket)',
      );
    }
    let mine = this.byConnection.get(connection.id);
    if ((mine?.size ?? 0) >= MAX_REGIONS_PER_CONNECTION) {
      throw new ThreeFsError(
        'RESOURCE_EXHAUSTED',
        `a connection may map at most ${MAX_REGIONS_PER_CONNECTION} regions`,
      );
    }
    const id = this.mapper.map(path, bytes);
    if (!mine) {
      mine = new Set();
      this.byConnection.set(connection.id, mine);
      connection.onClose(() => this.dropConnection(connection.id));
    }
    mine.add(id);
    this.regions.set(id, { connection: connection.id, bytes });
    this.log.debug({ region: id, path, bytes, connection: connection.id }, 'region mapped');
    return id;
  }

  /** The region's size, if `connection` mapped it; else NOT_FOUND (unknown, or someone else's). */
  bytesOf(connection: ConnectionScope, id: number): number {
    const region = this.regions.get(id);
    if (!region || region.connection !== connection.id)
      throw new ThreeFsError('NOT_FOUND', `no region ${id} mapped by this connection`);
    return region.bytes;
  }

  unmap(connection: ConnectionScope, id: number): void {
    this.bytesOf(connection, id);
    this.release(id);
    this.byConnection.get(connection.id)?.delete(id);
  }

  private dropConnection(connection: number): void {
    const mine = this.byConnection.get(connection);
    this.byConnection.delete(connection);
    for (const id of mine ?? []) this.release(id);
    if (mine?.size)
      this.log.debug({ connection, regions: mine.size }, 'regions of a closed connection unmapped');
  }

  private release(id: number): void {
    this.regions.delete(id);
    if (!this.mapper.unmap(id))
      throw new ThreeFsError('INTERNAL', `region ${id} was not mapped natively`);
  }
}
