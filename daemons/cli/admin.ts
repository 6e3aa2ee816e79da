// `threefs admin <command>`: cluster administration through the primary mgmtd (brief §1.6).
import { readFileSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import { MgmtdClient } from '../client/mgmtd-client.js';
import { ThreeFsError } from '../common/errors.js';
import { createLogger } from '../common/log.js';
import {
  applyRoutingDelta,
  emptyRoutingInfo,
  NodeType,
  type RoutingInfo,
} from '../common/routing.js';
import { MgmtdService } from '../common/services/mgmtd.js';
import { generatePlacement, type Placement } from '../mgmtd/placement.js';
import { type Command, defineCommand } from './command.js';

const idList = z
  .string()
  .regex(/^\d+(,\d+)*$/, 'a comma-separated list of ids')
  .transform((s) => s.split(',').map(Number));

const connection = {
  mgmtd: z
    .string()
    .min(1, 'give --mgmtd host:port[,host:port] or set THREEFS_MGMTD')
    .default(process.env.THREEFS_MGMTD ?? '')
    .describe('mgmtd addresses, comma-separated (env THREEFS_MGMTD)'),
  clusterId: z
    .string()
    .min(1)
    .default(process.env.THREEFS_CLUSTER_ID ?? 'threefs')
    .describe('cluster id (env THREEFS_CLUSTER_ID)'),
  token: z
    .string()
    .default(process.env.THREEFS_TOKEN ?? '')
    .describe('cluster token (env THREEFS_TOKEN)'),
  timeoutMs: z.number().int().positive().default(10_000).describe('give up after this many ms'),
  json: z.boolean().default(false).describe('print JSON instead of a table'),
};
type Connection = { mgmtd: string; clusterId: string; token: string; timeoutMs: number };

async function withMgmtd<T>(
  flags: Connection,
  task: (client: MgmtdClient) => Promise<T>,
): Promise<T> {
  const client = new MgmtdClient({
    addresses: flags.mgmtd
      .split(',')
      .map((a) => a.trim())
      .filter(Boolean),
    clusterId: flags.clusterId,
    token: flags.token || undefined,
    totalTimeoutMs: flags.timeoutMs,
    attemptTimeoutMs: Math.min(flags.timeoutMs, 3_000),
    log: createLogger({ role: 'cli', level: 'silent' }),
    backoff: { initialMs: 50, maxMs: 500 },
  });
  try {
    return await task(client);
  } finally {
    await client.close();
  }
}

async function routing(flags: Connection): Promise<RoutingInfo> {
  return withMgmtd(flags, async (client) => {
    const { body } = await client.call(MgmtdService.methods.getRoutingInfo, { sinceVersion: 0 });
    if (!body.delta) throw new ThreeFsError('INTERNAL', 'mgmtd sent no routing info for version 0');
    return applyRoutingDelta(emptyRoutingInfo(), body.delta);
  });
}

function readPlacement(file: string): Placement {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ThreeFsError(
      'INVALID_ARGUMENT',
      `cannot read placement file ${file}: ${(err as Error).message}`,
    );
  }
  const schema = z.object({
    targets: z.array(
      z.object({
        targetId: z.number(),
        nodeId: z.number(),
        diskIndex: z.number(),
        chainId: z.number(),
      }),
    ),
    chains: z.array(z.object({ chainId: z.number(), targetIds: z.array(z.number()) })),
    chainTable: z.object({ chainTableId: z.number(), chainIds: z.array(z.number()) }),
  });
  const result = schema.safeParse(parsed);
  if (!result.success)
    throw new ThreeFsError(
      'INVALID_ARGUMENT',
      `${file} is not a placement: ${result.error.issues[0]?.message}`,
    );
  return result.data as Placement;
}

function chainRow(chain: RoutingInfo['chains'][number]) {
  const states = chain.targets.map((t) => t.state);
  const health = states.every((s) => s === 'SERVING')
    ? 'healthy'
    : states.includes('SERVING')
      ? 'degraded'
      : 'unavailable';
  return {
    chain: chain.chainId,
    version: chain.chainVersion,
    health,
    targets: chain.targets.map((t) => `${t.targetId}:${t.state}`).join(' '),
  };
}

const countBy = <T>(items: T[], key: (item: T) => string) =>
  items.reduce<Record<string, number>>(
    (acc, item) => ({ ...acc, [key(item)]: (acc[key(item)] ?? 0) + 1 }),
    {},
  );

/** The chain edits mgmtd's updateChain performs, one command each. */
function chainEditCommand(name: string, op: 'add' | 'remove' | 'offline', summary: string) {
  return defineCommand({
    name,
    summary,
    flags: z.object({
      chainId: z.number().int().positive(),
      targetId: z.number().int().positive(),
      ...connection,
    }),
    run: async (flags) => {
      const { body } = await withMgmtd(flags, (c) =>
        c.call(MgmtdService.methods.updateChain, {
          chainId: flags.chainId,
          op,
          targetId: flags.targetId,
        }),
      );
      return { rows: [chainRow({ ...body.chain, preferredOrder: [], changedAt: 0 })] };
    },
  });
}

export const adminCommands: Command[] = [
  defineCommand({
    name: 'placement',
    summary: 'generate targets, chains and a chain table (JSON) for upload',
    flags: z.object({
      nodes: idList.describe('storage node ids, comma-separated'),
      disks: z.number().int().positive().default(1).describe('disks per node'),
      targetsPerDisk: z.number().int().positive().default(1).describe('targets per disk'),
      replication: z.number().int().positive().default(3).describe('targets per chain'),
      chainTableId: z.number().int().positive().default(1).describe('chain table id'),
      out: z.string().min(1).describe('file to write the placement JSON to'),
      json: connection.json,
    }),
    run: async (flags) => {
      const placement = generatePlacement({
        nodeIds: flags.nodes,
        disksPerNode: flags.disks,
        targetsPerDisk: flags.targetsPerDisk,
        replication: flags.replication,
        chainTableId: flags.chainTableId,
      });
      writeFileSync(flags.out, `${JSON.stringify(placement, null, 2)}\n`);
      return {
        rows: [
          {
            file: flags.out,
            targets: placement.targets.length,
            chains: placement.chains.length,
            ...placement.stats,
          },
        ],
      };
    },
  }),
  defineCommand({
    name: 'create-targets',
    summary: 'register the targets of a placement file with mgmtd',
    flags: z.object({
      file: z.string().min(1).describe('placement JSON from `admin placement`'),
      ...connection,
    }),
    run: async (flags) => {
      const { targets } = readPlacement(flags.file);
      const { body } = await withMgmtd(flags, (c) =>
        c.call(MgmtdService.methods.createTargets, { targets }),
      );
      return { rows: [{ created: body.created }] };
    },
  }),
  defineCommand({
    name: 'upload-chains',
    summary: 'upload the chains of a placement file',
    flags: z.object({ file: z.string().min(1).describe('placement JSON'), ...connection }),
    run: async (flags) => {
      const { chains } = readPlacement(flags.file);
      const { body } = await withMgmtd(flags, (c) =>
        c.call(MgmtdService.methods.setChains, { chains }),
      );
      return { rows: [{ uploaded: chains.length, changed: body.changed.length }] };
    },
  }),
  defineCommand({
    name: 'upload-chain-table',
    summary: 'upload the chain table of a placement file as a new table version',
    flags: z.object({
      file: z.string().min(1).describe('placement JSON'),
      description: z.string().default(''),
      ...connection,
    }),
    run: async (flags) => {
      const { chainTable } = readPlacement(flags.file);
      const { body } = await withMgmtd(flags, (c) =>
        c.call(MgmtdService.methods.setChainTable, {
          ...chainTable,
          description: flags.description,
        }),
      );
      return {
        rows: [
          {
            chainTable: chainTable.chainTableId,
            version: body.version,
            chains: chainTable.chainIds.length,
          },
        ],
      };
    },
  }),
  defineCommand({
    name: 'list-nodes',
    summary: 'nodes with their type, status and address',
    flags: z.object(connection),
    run: async (flags) => ({
      rows: (await routing(flags)).nodes.map((n) => ({
        node: n.nodeId,
        type: n.type,
        status: n.status,
        address: n.address,
        host: n.hostname,
        release: n.releaseVersion,
      })),
    }),
  }),
  defineCommand({
    name: 'list-targets',
    summary: 'targets with their chain, public and local state, usage and re-sync progress',
    flags: z.object(connection),
    run: async (flags) => {
      const info = await routing(flags);
      const publicState = new Map(
        info.chains.flatMap((c) => c.targets.map((t) => [t.targetId, t.state] as const)),
      );
      return {
        rows: info.targets.map((t) => ({
          target: t.targetId,
          node: t.nodeId,
          disk: t.diskIndex,
          chain: t.chainId,
          public: publicState.get(t.targetId) ?? '-',
          local: t.localState,
          usedBytes: t.usedBytes,
          sync: t.syncProgress
            ? `${t.syncProgress.chunksDone}/${t.syncProgress.chunksTotal} chunks ${t.syncProgress.bytesDone}/${t.syncProgress.bytesTotal} B`
            : '',
        })),
      };
    },
  }),
  defineCommand({
    name: 'list-chains',
    summary: 'chains with their version, health and targets (head first)',
    flags: z.object(connection),
    run: async (flags) => ({ rows: (await routing(flags)).chains.map(chainRow) }),
  }),
  defineCommand({
    name: 'list-chain-tables',
    summary: 'chain tables and their versions',
    flags: z.object(connection),
    run: async (flags) => ({
      rows: (await routing(flags)).chainTables.map((t) => ({
        table: t.chainTableId,
        version: t.version,
        chains: t.chainIds.length,
        description: t.description,
      })),
    }),
  }),
  defineCommand({
    name: 'status',
    summary: 'one screen: primary, nodes up/down, chains by health, targets by state',
    flags: z.object(connection),
    run: async (flags) => {
      const info = await routing(flags);
      const primary = info.nodes.find((n) => n.status === 'PRIMARY_MGMTD');
      const chains = info.chains.map(chainRow);
      const value = {
        primary: primary ? `${primary.nodeId} ${primary.address}` : 'none',
        routingVersion: info.routingVersion,
        bootstrapping: info.bootstrapping,
        nodes: countBy(info.nodes, (n) => `${n.type}/${n.status}`),
        chains: countBy(chains, (c) => c.health),
        targetsPublic: countBy(
          info.chains.flatMap((c) => c.targets),
          (t) => t.state,
        ),
        targetsLocal: countBy(info.targets, (t) => t.localState),
      };
      return { value };
    },
  }),
  chainEditCommand(
    'offline-target',
    'offline',
    'mark a target OFFLINE (never the last SERVING one)',
  ),
  chainEditCommand(
    'add-target',
    'add',
    'append a created target to a chain (it syncs, then serves)',
  ),
  chainEditCommand('remove-target', 'remove', 'remove an OFFLINE target from a chain'),
  defineCommand({
    name: 'rotate-lastsrv',
    summary:
      'give up on a dead LASTSRV target and wait for the next one (may lose its last writes)',
    flags: z.object({ chainId: z.number().int().positive(), ...connection }),
    run: async (flags) => {
      const { body } = await withMgmtd(flags, (c) =>
        c.call(MgmtdService.methods.rotateLastSrv, { chainId: flags.chainId }),
      );
      return { rows: [chainRow({ ...body.chain, preferredOrder: [], changedAt: 0 })] };
    },
  }),
  defineCommand({
    name: 'disable-node',
    summary: 'refuse a node’s heartbeats; its targets go OFFLINE',
    flags: z.object({ nodeId: z.number().int().positive(), ...connection }),
    run: async (flags) => {
      await withMgmtd(flags, (c) =>
        c.call(MgmtdService.methods.disableNode, { nodeId: flags.nodeId }),
      );
      return { rows: [{ node: flags.nodeId, disabled: true }] };
    },
  }),
  defineCommand({
    name: 'enable-node',
    summary: 'accept a disabled node again',
    flags: z.object({ nodeId: z.number().int().positive(), ...connection }),
    run: async (flags) => {
      await withMgmtd(flags, (c) =>
        c.call(MgmtdService.methods.enableNode, { nodeId: flags.nodeId }),
      );
      return { rows: [{ node: flags.nodeId, disabled: false }] };
    },
  }),
  defineCommand({
    name: 'set-config',
    summary: 'store a new config version for a node type; daemons receive it by heartbeat',
    flags: z.object({
      nodeType: NodeType,
      file: z.string().min(1).describe('TOML file'),
      ...connection,
    }),
    run: async (flags) => {
      let content: string;
      try {
        content = readFileSync(flags.file, 'utf8');
      } catch (err) {
        throw new ThreeFsError(
          'INVALID_ARGUMENT',
          `cannot read ${flags.file}: ${(err as Error).message}`,
        );
      }
      const { body } = await withMgmtd(flags, (c) =>
        c.call(MgmtdService.methods.setConfig, { nodeType: flags.nodeType, content }),
      );
      return { rows: [{ nodeType: flags.nodeType, version: body.version }] };
    },
  }),
  defineCommand({
    name: 'get-config',
    summary: 'print the current config of a node type',
    flags: z.object({ nodeType: NodeType, ...connection }),
    run: async (flags) => {
      const { body } = await withMgmtd(flags, (c) =>
        c.call(MgmtdService.methods.getConfig, { nodeType: flags.nodeType }),
      );
      if (!body.config)
        throw new ThreeFsError('NOT_FOUND', `no config stored for ${flags.nodeType}`);
      return flags.json
        ? { value: body.config }
        : {
            value: `# ${flags.nodeType} config version ${body.config.version}\n${body.config.content}`,
          };
    },
  }),
] as unknown as Command[];
