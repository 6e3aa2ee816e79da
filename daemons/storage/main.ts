// Entry point: `node dist/daemons/storage/main.js --set nodeId=N --set 'mgmtd=["host:port"]'
// --set 'disks=["/path"]' ...` (or a TOML config file).
import { runDaemon } from '../common/daemon.js';
import { STORAGE_ENV_PREFIX, storageConfigSchema } from './config.js';
import { openChunkEngine } from './engine/index.js';
import { StorageServer } from './storage-server.js';

await runDaemon({
  role: 'storage',
  schema: storageConfigSchema,
  envPrefix: STORAGE_ENV_PREFIX,
  nodeId: (config) => config.nodeId,
  status: (config) => config.status,
  start: async ({ config, log, registry }) => {
    const server = new StorageServer({
      config,
      log,
      registry,
      openStore: (path) =>
        openChunkEngine(
          {
            path,
            ...config.engine,
            lowSpaceThreshold: config.space.lowSpaceRatio,
            rejectNewChunksThreshold: config.space.rejectNewChunkRatio,
          },
          log,
        ),
    });
    await server.start();
    return {
      ready: { address: server.address, localAddress: server.localAddress },
      health: () => server.health(),
      stop: () => server.stop(),
    };
  },
});
