// The seams between the storage protocol code and the world: time and the peer transport. The
// daemon uses the real ones; the deterministic simulation (test/storage/simulation/) passes a
// virtual clock and a simulated network, and so runs the very same protocol code under seeded
// schedules of delays and crashes.
import type { z } from 'zod';
import type { Method, Reply } from '../common/rpc/index.js';

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** What the protocol code needs of an RPC client: one typed call. */
export interface PeerClient {
  call<Req extends z.ZodType, Res extends z.ZodType>(
    method: Method<Req, Res>,
    request: z.input<Req>,
    options?: { payload?: Buffer | undefined; payloadCrc?: number | undefined; timeoutMs?: number },
  ): Promise<Reply<z.output<Res>>>;
}

/** Clients by peer address (an RpcClientPool in the daemon). */
export interface PeerPool {
  get(address: string): PeerClient;
}
