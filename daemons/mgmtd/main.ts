// Entry point: `node dist/daemons/mgmtd/main.js [--config FILE] [--set key=value ...]`.
import { runDaemon } from '../common/daemon.js';
import { openKvStore } from '../common/kv/index.js';
import { MGMTD_ENV_PREFIX, mgmtdConfigSchema } from './config.js';
import { MgmtdServer } from './mgmtd-server.js';

await runDaemon({
  role: 'mgmtd',
  schema: mgmtdConfigSchema,
  envPrefix: MGMTD_ENV_PREFIX,
  nodeId: (config) => config.nodeId,
  status: (config) => config.status,
  start: async ({ config, log, registry }) => {
    const kv = await openKvStore(config.kv);
    const server = new MgmtdServer({
      config,
      kv,
      log,
      registry,
      configSchemas: { MGMTD: mgmtdConfigSchema },
    });
    await server.start();
    return {
      ready: { address: server.address },
      health: () => ({ ok: true, detail: { primary: server.isPrimary } }),
      stop: async () => {
        await server.stop();
        await kv.close();
      },
    };
  },
});
