// The mgmtd RPC service: what storage, meta, clients, the CLI and the operator may ask of the
// cluster manager. Method ids follow 3FS's where 3FS has the method (brief §1.2); ours are ≥ 30.
import { z } from 'zod';
import { defineService } from '../rpc/index.js';
import { NodeType, RoutingDelta, SyncProgress } from '../routing.js';
import { LocalTargetState, PublicTargetState } from '../target-states.js';

const Id = z.number().int().positive();
const Empty = z.object({});

export const LeaseHolderSchema = z.object({ nodeId: Id, address: z.string() });

export const ServiceConfigSchema = z.object({
  nodeType: NodeType,
  version: z.number().int().min(1),
  content: z.string().max(1_000_000),
});

export const HeartbeatRequest = z.object({
  nodeId: Id,
  type: NodeType,
  heartbeatVersion: z.number().int().positive(),
  sentAtMs: z.number().int().nonnegative(),
  address: z.string().max(512).default(''),
  hostname: z.string().max(256).default(''),
  /** "unix:/path" for clients on the same host, or ''. */
  localAddress: z.string().max(512).default(''),
  releaseVersion: z.string().max(64).default(''),
  configVersion: z.number().int().min(0).default(0),
  targets: z
    .array(
      z.object({
        targetId: Id,
        localState: LocalTargetState,
        chainVersion: z.number().int().min(0),
        usedBytes: z.number().int().min(0).default(0),
        lowSpace: z.boolean().default(false),
        syncProgress: SyncProgress.optional(),
      }),
    )
    .max(100_000)
    .default([]),
});

export const PlacedTargetSchema = z.object({
  targetId: Id,
  nodeId: Id,
  diskIndex: z.number().int().min(0),
  chainId: Id,
});

export const ChainSchema = z.object({
  chainId: Id,
  chainVersion: z.number().int().min(1),
  targets: z.array(z.object({ targetId: Id, state: PublicTargetState })),
});

export const ClientSessionSchema = z.object({
  clientId: z.string().min(1).max(128),
  hostname: z.string().max(256),
  description: z.string().max(256),
  startedAtMs: z.number(),
  expiresAtMs: z.number(),
});

export const MgmtdService = defineService({
  id: 217,
  name: 'Mgmtd',
  methods: {
    getPrimaryMgmtd: {
      id: 1,
      request: Empty,
      response: z.object({
        primary: LeaseHolderSchema.optional(),
        leaseEndMs: z.number().default(0),
      }),
    },
    heartbeat: {
      id: 3,
      request: HeartbeatRequest,
      response: z.object({
        routingVersion: z.number().int(),
        config: ServiceConfigSchema.optional(),
      }),
    },
    getRoutingInfo: {
      id: 5,
      request: z.object({ sinceVersion: z.number().int().min(0).default(0) }),
      /** No delta when the caller is already current. */
      response: z.object({ routingVersion: z.number().int(), delta: RoutingDelta.optional() }),
    },
    setConfig: {
      id: 6,
      request: z.object({ nodeType: NodeType, content: z.string().max(1_000_000) }),
      response: z.object({ version: z.number().int() }),
    },
    getConfig: {
      id: 7,
      request: z.object({ nodeType: NodeType }),
      response: z.object({ config: ServiceConfigSchema.optional() }),
    },
    setChainTable: {
      id: 8,
      request: z.object({
        chainTableId: Id,
        chainIds: z.array(Id).min(1).max(1_000_000),
        description: z.string().max(1024).default(''),
      }),
      response: z.object({ version: z.number().int() }),
    },
    enableNode: { id: 9, request: z.object({ nodeId: Id }), response: Empty },
    disableNode: { id: 10, request: z.object({ nodeId: Id }), response: Empty },
    extendClientSession: {
      id: 11,
      request: z.object({
        clientId: z.string().min(1).max(128),
        hostname: z.string().max(256).default(''),
        description: z.string().max(256).default(''),
      }),
      response: z.object({ expiresAtMs: z.number() }),
    },
    listClientSessions: {
      id: 12,
      request: Empty,
      response: z.object({ sessions: z.array(ClientSessionSchema) }),
    },
    setChains: {
      id: 15,
      request: z.object({
        chains: z
          .array(z.object({ chainId: Id, targetIds: z.array(Id).min(1).max(16) }))
          .min(1)
          .max(1_000_000),
      }),
      response: z.object({ changed: z.array(Id) }),
    },
    rotateLastSrv: {
      id: 20,
      request: z.object({ chainId: Id }),
      response: z.object({ chain: ChainSchema }),
    },
    setPreferredTargetOrder: {
      id: 22,
      request: z.object({ chainId: Id, order: z.array(Id).max(16) }),
      response: Empty,
    },
    rotateAsPreferredOrder: {
      id: 23,
      request: z.object({ chainId: Id }),
      response: z.object({ chain: ChainSchema }),
    },
    updateChain: {
      id: 24,
      request: z.object({ chainId: Id, op: z.enum(['add', 'remove', 'offline']), targetId: Id }),
      response: z.object({ chain: ChainSchema }),
    },
    createTargets: {
      id: 30,
      request: z.object({ targets: z.array(PlacedTargetSchema).min(1).max(1_000_000) }),
      response: z.object({ created: z.number().int() }),
    },
    shutdownAllChains: { id: 31, request: Empty, response: z.object({ chains: z.number().int() }) },
  },
});
