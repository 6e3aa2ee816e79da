// Calls the metadata service (brief §1.3 "RandomFollow"): picks a meta server at random and keeps
// using it; when it fails (UNAVAILABLE, DEADLINE_EXCEEDED) moves to another one, found in routing
// info as META nodes that are HEARTBEAT_CONNECTED (or from a static list). Every request carries
// the caller's identity, this client's id and a fresh request id; a retry reuses the request id,
// and meta keeps the reply of every mutating request under it, so a retry after a lost reply gets
// the first answer instead of doing the work twice. Bounded in attempts and in time.
import { randomUUID } from 'node:crypto';
import type { Registry } from 'prom-client';
import type { z } from 'zod';
import { ThreeFsError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { RpcClientPool } from '../common/rpc/index.js';
import { sameHostAddress } from '../common/routing.js';
import { MgmtdService } from '../common/services/mgmtd.js';
import { type MetaMethods, MetaService } from '../common/services/meta.js';
import type { MgmtdClient } from './mgmtd-client.js';
import { RequestIds } from './request-ids.js';
import type { RoutingCache } from './routing-cache.js';

export interface MetaUser {
  uid: number;
  gid: number;
  groups?: number[];
}

export interface MetaClientOptions {
  clusterId: string;
  token?: string | undefined;
  /** Names this client's write sessions; mgmtd must know it as live (see `mgmtd`). */
  clientId?: string;
  /** Static meta addresses; without them, META nodes from `routing`. */
  addresses?: readonly string[];
  routing?: RoutingCache;
  /** When given, the client keeps its session at mgmtd alive so meta never prunes its writes. */
  mgmtd?: MgmtdClient;
  sessionKeepaliveMs?: number;
  /** Identity used when a call does not name one. */
  user?: MetaUser;
  attemptTimeoutMs?: number;
  totalTimeoutMs?: number;
  log?: Logger;
  /** Where its RPC client metrics go (a daemon's /metrics); none without. */
  registry?: Registry;
}

type HeaderFields = 'uid' | 'gid' | 'groups' | 'clientId' | 'requestId';
export type MetaCallBody<K extends keyof MetaMethods> = Omit<
  z.input<MetaMethods[K]['request']>,
  HeaderFields
>;
export type MetaReply<K extends keyof MetaMethods> = z.output<MetaMethods[K]['response']>;

const MAX_ATTEMPTS = 64;
const RETRYABLE = new Set(['UNAVAILABLE', 'DEADLINE_EXCEEDED', 'TXN_CONFLICT']);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class MetaClient {
  readonly clientId: string;
  private readonly pool: RpcClientPool;
  /** One id per call, reused by its retries (idempotency), in issue order (see request-ids.ts). */
  private readonly requestIds = new RequestIds();
  private current: string | undefined;
  private readonly failedAt = new Map<string, number>();
  private keepalive: NodeJS.Timeout | undefined;
  /** Server switches so far (tests and metrics read it). */
  failovers = 0;

  constructor(private readonly options: MetaClientOptions) {
    if (!options.addresses?.length && !options.routing) {
      throw new ThreeFsError(
        'INVALID_ARGUMENT',
        'a meta client needs addresses or a routing cache',
      );
    }
    this.clientId = options.clientId ?? randomUUID();
    this.pool = new RpcClientPool({
      clusterId: options.clusterId,
      token: options.token,
      log: options.log,
      registry: options.registry,
      name: `meta-client-${this.clientId}`,
    });
  }

  /** Registers this client with mgmtd and keeps it alive (needed before opening files for write). */
  async startSession(): Promise<void> {
    const mgmtd = this.options.mgmtd;
    if (!mgmtd)
      throw new ThreeFsError('FAILED_PRECONDITION', 'no mgmtd client to keep a session with');
    const extend = () =>
      mgmtd.call(MgmtdService.methods.extendClientSession, {
        clientId: this.clientId,
        description: 'meta client',
      });
    await extend();
    this.keepalive = setInterval(() => {
      extend().catch((err: unknown) =>
        this.options.log?.warn({ err }, 'client session extension failed'),
      );
    }, this.options.sessionKeepaliveMs ?? 10_000);
    this.keepalive.unref();
  }

  async close(): Promise<void> {
    if (this.keepalive) clearInterval(this.keepalive);
    await this.pool.close();
  }

  /** The server calls go to now, if one has been picked. */
  get server(): string | undefined {
    return this.current;
  }

  async call<K extends keyof MetaMethods>(
    name: K,
    body: MetaCallBody<K>,
    user?: MetaUser,
  ): Promise<MetaReply<K>> {
    const method = MetaService.methods[name];
    const who = user ?? this.options.user ?? { uid: 0, gid: 0 };
    const request = {
      ...body,
      uid: who.uid,
      gid: who.gid,
      groups: who.groups ?? [],
      clientId: this.clientId,
      requestId: this.requestIds.next(),
    } as z.input<MetaMethods[K]['request']>;
    const total = this.options.totalTimeoutMs ?? 60_000;
    const deadline = Date.now() + total;
    let lastError: unknown;
    for (let attempt = 0; attempt < MAX_ATTEMPTS && Date.now() < deadline; attempt++) {
      const address = await this.pick();
      if (address === undefined) {
        lastError = new ThreeFsError('UNAVAILABLE', 'no meta server is known');
        await sleep(Math.min(500, 50 * 2 ** attempt));
        continue;
      }
      try {
        const timeoutMs = Math.max(
          1,
          Math.min(this.options.attemptTimeoutMs ?? 5_000, deadline - Date.now()),
        );
        const reply = await this.pool.get(address).call(method, request as never, { timeoutMs });
        return reply.body as MetaReply<K>;
      } catch (err) {
        if (!(err instanceof ThreeFsError) || !RETRYABLE.has(err.code)) throw err;
        lastError = err;
        if (err.code !== 'TXN_CONFLICT') this.fail(address);
        await sleep(Math.min(1_000, 20 * 2 ** Math.min(attempt, 6)));
      }
    }
    throw new ThreeFsError(
      'UNAVAILABLE',
      `meta ${name} failed after retries: ${(lastError as Error | undefined)?.message ?? 'no attempt'}`,
    );
  }

  /** Where to dial each live meta server: its unix socket when it runs on this host. */
  private servers(): string[] {
    if (this.options.addresses?.length) return [...this.options.addresses];
    const info = this.options.routing!.current;
    return info.nodes
      .filter((n) => n.type === 'META' && n.status === 'HEARTBEAT_CONNECTED' && n.address !== '')
      .map((n) => sameHostAddress(n) ?? n.address);
  }

  private fail(address: string): void {
    this.failedAt.set(address, Date.now());
    if (this.current === address) {
      this.current = undefined;
      this.failovers++;
    }
  }

  /** The current server, or a random one that has not failed in the last few seconds. */
  private async pick(): Promise<string | undefined> {
    let servers = this.servers();
    if (this.current !== undefined && servers.includes(this.current)) return this.current;
    if (servers.length === 0 && this.options.routing) {
      await this.options.routing.refresh().catch(() => undefined);
      servers = this.servers();
    }
    const now = Date.now();
    const healthy = servers.filter((s) => now - (this.failedAt.get(s) ?? 0) > 2_000);
    const choices = healthy.length > 0 ? healthy : servers;
    if (choices.length === 0) return undefined;
    if (healthy.length === 0 && this.options.routing)
      void this.options.routing.refresh().catch(() => undefined);
    this.current = choices[Math.floor(Math.random() * choices.length)];
    return this.current;
  }
}
