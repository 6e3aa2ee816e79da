// RpcClientPool: one RpcClient per peer address, created on first use, for daemons that talk to
// many peers (storage to its chain successors, meta to storage). Bounded: past `maxClients`, the
// least recently used idle client is closed.
import { ThreeFsError } from '../errors.js';
import { RpcClient, type RpcClientOptions } from './client.js';

export interface RpcClientPoolOptions extends Omit<RpcClientOptions, 'address'> {
  maxClients?: number;
}

export class RpcClientPool {
  /** Insertion order doubles as recency order: get() re-inserts the client it returns. */
  private readonly clients = new Map<string, RpcClient>();
  private readonly maxClients: number;
  private closed = false;

  constructor(private readonly options: RpcClientPoolOptions) {
    this.maxClients = options.maxClients ?? 1024;
    if (!(this.maxClients >= 1))
      throw new ThreeFsError('INVALID_ARGUMENT', 'maxClients must be >= 1');
  }

  get size(): number {
    return this.clients.size;
  }

  /** The client for `address`, created if needed. */
  get(address: string): RpcClient {
    if (this.closed) throw new ThreeFsError('UNAVAILABLE', 'client pool is closed');
    let client = this.clients.get(address);
    if (client !== undefined) {
      this.clients.delete(address);
      this.clients.set(address, client);
      return client;
    }
    client = new RpcClient({ ...this.options, address });
    this.clients.set(address, client);
    if (this.clients.size > this.maxClients) this.evictOne();
    return client;
  }

  async close(): Promise<void> {
    this.closed = true;
    const clients = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(clients.map((client) => client.close()));
  }

  private evictOne(): void {
    for (const [address, client] of this.clients) {
      if (client.inFlightCalls === 0 && client.queuedCalls === 0) {
        this.clients.delete(address);
        void client.close();
        return;
      }
    }
    // Every client is busy: keep them all rather than fail calls; the overshoot is bounded by
    // how many peers can be busy at once.
  }
}
