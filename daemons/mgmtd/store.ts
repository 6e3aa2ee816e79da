// mgmtd's persistent state in the KV store (brief §1.8): the lease row, nodes, targets, chains,
// chain tables, configs and the routing version. Values are JSON checked by zod on the way in, so
// a damaged row fails loading with its key named instead of poisoning memory.
//
// Every mutating transaction re-reads the lease row and checks that this node still holds it
// (fencing): if another mgmtd took over, the read conflicts or the check fails, and nothing is
// written by a deposed primary.
import { z } from 'zod';
import { ThreeFsError } from '../common/errors.js';
import { encodeKey, type KvStore, prefixRange, type Transaction } from '../common/kv/index.js';
import { NodeType } from '../common/routing.js';
import { PublicTargetState } from '../common/target-states.js';
import type { Chain } from './chain-state-machine.js';
import type {
  PersistedCluster,
  PersistedNode,
  PersistedTarget,
  ServiceConfig,
} from './cluster-state.js';
import {
  decideLease,
  type LeaseCandidate,
  type LeaseDecision,
  type LeaseRecord,
  type LeaseTimings,
} from './lease.js';

const LEASE_KEY = encodeKey('SING', 'MgmtdLease');
const ROUTING_VERSION_KEY = encodeKey('SING', 'RoutingInfoVersion');
const NODE = 'NODE';
const TARGET = 'TGIF';
const CHAIN = 'CHIF';
const TABLE = 'CHIT';
const CONFIG = 'CONF';

const LeaseRecordSchema = z.object({
  primary: z.object({ nodeId: z.number().int().positive(), address: z.string() }),
  leaseStartMs: z.number(),
  leaseEndMs: z.number(),
  releaseVersion: z.string(),
});

const NodeSchema = z.object({
  nodeId: z.number().int().positive(),
  type: NodeType,
  address: z.string(),
  hostname: z.string(),
  disabled: z.boolean(),
  tags: z.array(z.string()),
});

const TargetSchema = z.object({
  targetId: z.number().int().positive(),
  nodeId: z.number().int().positive(),
  diskIndex: z.number().int().min(0),
  chainId: z.number().int().positive(),
});

const ChainSchema = z.object({
  chainId: z.number().int().positive(),
  chainVersion: z.number().int().min(1),
  targets: z
    .array(z.object({ targetId: z.number().int().positive(), state: PublicTargetState }))
    .min(1),
  preferredOrder: z.array(z.number().int().positive()).default([]),
});

const TableSchema = z.object({
  chainTableId: z.number().int().positive(),
  version: z.number().int().min(1),
  chainIds: z.array(z.number().int().positive()).min(1),
  description: z.string(),
});

const ConfigSchema = z.object({
  nodeType: NodeType,
  version: z.number().int().min(1),
  content: z.string(),
});

function encode(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

function decode<S extends z.ZodType>(schema: S, key: Buffer, value: Buffer): z.output<S> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value.toString('utf8'));
  } catch {
    throw new ThreeFsError('INTERNAL', `mgmtd store: row ${key.toString('hex')} is not JSON`);
  }
  const result = schema.safeParse(parsed);
  if (!result.success) {
    throw new ThreeFsError(
      'INTERNAL',
      `mgmtd store: row ${key.toString('hex')} is invalid: ${result.error.message}`,
    );
  }
  return result.data;
}

/** Writes a deposed primary could make are refused: this is checked inside every mutation. */
async function assertLeaseHeld(tx: Transaction, nodeId: number, nowMs: number): Promise<void> {
  const raw = await tx.get(LEASE_KEY);
  const lease = raw && decode(LeaseRecordSchema, LEASE_KEY, raw);
  if (!lease || lease.primary.nodeId !== nodeId || lease.leaseEndMs <= nowMs) {
    throw new ThreeFsError('NOT_PRIMARY', `node ${nodeId} no longer holds the mgmtd lease`, {
      primary: lease && lease.leaseEndMs > nowMs ? lease.primary : undefined,
    });
  }
}

export interface ClusterChanges {
  /** The routing version the changes will be published at; stored if higher than the stored one. */
  routingVersion?: number;
  nodes?: readonly PersistedNode[];
  targets?: readonly PersistedTarget[];
  chains?: readonly Chain[];
  preferredOrders?: ReadonlyArray<{ chainId: number; order: number[] }>;
  chainTables?: ReadonlyArray<{
    chainTableId: number;
    version: number;
    chainIds: number[];
    description: string;
  }>;
  configs?: readonly ServiceConfig[];
}

export class MgmtdStore {
  constructor(private readonly kv: KvStore) {}

  async readLease(): Promise<LeaseRecord | undefined> {
    return this.kv.run(async (tx) => {
      const raw = await tx.snapshot.get(LEASE_KEY);
      return raw && decode(LeaseRecordSchema, LEASE_KEY, raw);
    });
  }

  /** One round of the lease loop: read, decide and write in one serializable transaction. */
  async extendLease(
    self: LeaseCandidate,
    timings: LeaseTimings,
    now: () => number,
  ): Promise<{ decision: LeaseDecision; lease: LeaseRecord | undefined }> {
    return this.kv.run(async (tx) => {
      const raw = await tx.get(LEASE_KEY);
      const stored = raw && decode(LeaseRecordSchema, LEASE_KEY, raw);
      const decision = decideLease(stored, self, now(), timings);
      if (decision.action === 'none') return { decision, lease: stored };
      tx.set(LEASE_KEY, encode(decision.record));
      return { decision, lease: decision.record };
    });
  }

  /** Everything a new primary reloads (brief §1.2 bootstrapping). */
  async loadCluster(): Promise<PersistedCluster> {
    return this.kv.run(async (tx) => {
      const rows = async (tag: string) => {
        const { begin, end } = prefixRange(encodeKey(tag));
        return tx.snapshot.getRange(begin, end);
      };
      const version = await tx.snapshot.get(ROUTING_VERSION_KEY);
      const chains = (await rows(CHAIN)).map((r) => decode(ChainSchema, r.key, r.value));
      const configs = (await rows(CONFIG)).map((r) => decode(ConfigSchema, r.key, r.value));
      const latest = new Map<string, ServiceConfig>();
      for (const c of configs)
        if ((latest.get(c.nodeType)?.version ?? 0) < c.version) latest.set(c.nodeType, c);
      return {
        routingVersion: version ? Number(version.readBigUInt64BE(0)) : 0,
        nodes: (await rows(NODE)).map((r) => decode(NodeSchema, r.key, r.value)),
        targets: (await rows(TARGET)).map((r) => decode(TargetSchema, r.key, r.value)),
        chains: chains.map(({ preferredOrder: _order, ...chain }) => chain),
        preferredOrders: chains
          .filter((c) => c.preferredOrder.length > 0)
          .map((c) => ({ chainId: c.chainId, order: c.preferredOrder })),
        chainTables: (await rows(TABLE)).map((r) => decode(TableSchema, r.key, r.value)),
        configs: [...latest.values()],
      };
    });
  }

  /**
   * Persists changes as the lease holder `nodeId`, in one transaction. Chains are written only if
   * their version is newer than the stored one: versions never go backwards, even if two code
   * paths race.
   */
  async persist(nodeId: number, changes: ClusterChanges, now: () => number): Promise<void> {
    await this.kv.run(async (tx) => {
      await assertLeaseHeld(tx, nodeId, now());
      if (changes.routingVersion !== undefined) {
        const raw = await tx.get(ROUTING_VERSION_KEY);
        const stored = raw ? Number(raw.readBigUInt64BE(0)) : 0;
        if (changes.routingVersion > stored)
          tx.set(ROUTING_VERSION_KEY, encodeKey(changes.routingVersion));
      }
      for (const node of (changes.nodes ?? []).map((n) => NodeSchema.parse(n))) {
        tx.set(encodeKey(NODE, node.nodeId), encode(node));
      }
      for (const target of (changes.targets ?? []).map((t) => TargetSchema.parse(t))) {
        tx.set(encodeKey(TARGET, target.targetId), encode(target));
      }
      const orders = new Map((changes.preferredOrders ?? []).map((p) => [p.chainId, p.order]));
      for (const chain of changes.chains ?? []) {
        const key = encodeKey(CHAIN, chain.chainId);
        const raw = await tx.get(key);
        const stored = raw && decode(ChainSchema, key, raw);
        if (stored && stored.chainVersion >= chain.chainVersion) {
          throw new ThreeFsError(
            'FAILED_PRECONDITION',
            `chain ${chain.chainId}: stored version ${stored.chainVersion} is not older than ${chain.chainVersion}`,
          );
        }
        const preferredOrder = orders.get(chain.chainId) ?? stored?.preferredOrder ?? [];
        orders.delete(chain.chainId);
        tx.set(key, encode(ChainSchema.parse({ ...chain, preferredOrder })));
      }
      for (const [chainId, order] of orders) {
        const key = encodeKey(CHAIN, chainId);
        const raw = await tx.get(key);
        if (!raw) throw new ThreeFsError('NOT_FOUND', `no chain ${chainId}`);
        tx.set(key, encode({ ...decode(ChainSchema, key, raw), preferredOrder: order }));
      }
      for (const table of changes.chainTables ?? []) {
        const key = encodeKey(TABLE, table.chainTableId, table.version);
        if (await tx.get(key)) {
          throw new ThreeFsError(
            'ALREADY_EXISTS',
            `chain table ${table.chainTableId} version ${table.version} exists`,
          );
        }
        tx.set(key, encode(TableSchema.parse(table)));
      }
      for (const config of changes.configs ?? []) {
        tx.set(
          encodeKey(CONFIG, config.nodeType, config.version),
          encode(ConfigSchema.parse(config)),
        );
      }
    });
  }
}
