// Talks to whichever mgmtd is primary (brief §1.2 "Discovery"): starts from a static list of
// addresses, follows NOT_PRIMARY replies to the named primary, and moves on to the next address
// when one is unreachable. Every call is bounded in attempts and in time.
import type { z } from 'zod';
import { ThreeFsError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import {
  type CallOptions,
  type Method,
  type Reply,
  RpcClientPool,
  type RpcClientPoolOptions,
} from '../common/rpc/index.js';

export interface MgmtdClientOptions extends RpcClientPoolOptions {
  /** Seed addresses ("host:port"); any of them may be a secondary. */
  addresses: readonly string[];
  /** Give up after this long across all attempts. */
  totalTimeoutMs?: number;
  /** Per-attempt deadline. */
  attemptTimeoutMs?: number;
  log?: Logger;
}

const MAX_ATTEMPTS = 32;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export class MgmtdClient {
  private readonly pool: RpcClientPool;
  private readonly seeds: string[];
  private primaryAddress: string | undefined;
  private readonly totalTimeoutMs: number;
  private readonly attemptTimeoutMs: number;

  constructor(private readonly options: MgmtdClientOptions) {
    if (options.addresses.length === 0)
      throw new ThreeFsError('INVALID_ARGUMENT', 'no mgmtd address given');
    this.seeds = [...options.addresses];
    this.pool = new RpcClientPool({ ...options, name: options.name ?? 'mgmtd-client' });
    this.totalTimeoutMs = options.totalTimeoutMs ?? 30_000;
    this.attemptTimeoutMs = options.attemptTimeoutMs ?? 5_000;
  }

  /** The address believed to be primary, if one has answered. */
  get primary(): string | undefined {
    return this.primaryAddress;
  }

  async call<Req extends z.ZodType, Res extends z.ZodType>(
    method: Method<Req, Res>,
    request: z.input<Req>,
    options: Omit<CallOptions, 'timeoutMs'> & { totalTimeoutMs?: number } = {},
  ): Promise<Reply<z.output<Res>>> {
    const deadline = Date.now() + (options.totalTimeoutMs ?? this.totalTimeoutMs);
    let seedIndex = 0;
    let address = this.primaryAddress ?? this.seeds[0];
    let lastError: unknown;
    for (let attempt = 0; attempt < MAX_ATTEMPTS && Date.now() < deadline; attempt++) {
      const target = address as string;
      try {
        const timeoutMs = Math.max(1, Math.min(this.attemptTimeoutMs, deadline - Date.now()));
        const reply = await this.pool.get(target).call(method, request, { ...options, timeoutMs });
        this.primaryAddress = target;
        return reply;
      } catch (err) {
        lastError = err;
        if (!(err instanceof ThreeFsError)) throw err;
        if (err.code === 'NOT_PRIMARY') {
          const named = (err.details?.primary as { address?: string } | undefined)?.address;
          this.primaryAddress = undefined;
          if (named && named !== target) {
            address = named;
            continue;
          }
          await sleep(Math.min(500, Math.max(0, deadline - Date.now()))); // election in progress
        } else if (err.code === 'UNAVAILABLE' || err.code === 'DEADLINE_EXCEEDED') {
          if (this.primaryAddress === target) this.primaryAddress = undefined;
          if (seedIndex + 1 >= this.seeds.length)
            await sleep(Math.min(200, Math.max(0, deadline - Date.now())));
        } else {
          throw err;
        }
        seedIndex = (seedIndex + 1) % this.seeds.length;
        address = this.seeds[seedIndex];
      }
    }
    if (lastError instanceof ThreeFsError && lastError.code !== 'NOT_PRIMARY') {
      throw new ThreeFsError(
        'UNAVAILABLE',
        `no mgmtd answered ${method.name}: ${lastError.message}`,
      );
    }
    throw new ThreeFsError(
      'UNAVAILABLE',
      `no primary mgmtd reachable at ${this.seeds.join(', ')} for ${method.name}`,
    );
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}
