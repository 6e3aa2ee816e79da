// Entry point: `node dist/daemons/meta/main.js [--config FILE] [--set key=value ...]`.
import { MgmtdClient } from '../client/mgmtd-client.js';
import { RoutingCache } from '../client/routing-cache.js';
import { StorageClient } from '../client/storage-client.js';
import { runDaemon } from '../common/daemon.js';
import { openKvStore } from '../common/kv/index.js';
import { META_ENV_PREFIX, metaConfigSchema } from './config.js';
import { MetaServer } from './meta-server.js';

await runDaemon({
  role: 'meta',
  schema: metaConfigSchema,
  envPrefix: META_ENV_PREFIX,
  nodeId: (config) => config.nodeId,
  status: (config) => config.status,
  start: async ({ config, log, registry }) => {
    const kv = await openKvStore(config.kv);
    const token = config.token || undefined;
    const mgmtd = new MgmtdClient({
      addresses: config.mgmtd,
      clusterId: config.clusterId,
      token,
      log,
      name: `meta-${config.nodeId}`,
    });
    const routing = new RoutingCache(mgmtd, { refreshIntervalMs: config.routingRefreshMs, log });
    routing.start();
    const storage = new StorageClient({ routing, clusterId: config.clusterId, token, log });
    const server = new MetaServer({ config, kv, log, registry, mgmtd, routing, chunks: storage });
    await server.start();
    return {
      ready: { address: server.address },
      health: () => ({ ok: true, detail: { routingVersion: routing.current.routingVersion } }),
      stop: async () => {
        await server.stop();
        routing.stop();
        await storage.close();
        await mgmtd.close();
        await kv.close();
      },
    };
  },
});
