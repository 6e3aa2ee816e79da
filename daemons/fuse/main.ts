// Entry point: `node dist/daemons/fuse/main.js --set mountpoint=DIR --set mgmtd=[...]`. Logs
// "fuse ready" once the mount answers; SIGTERM/SIGINT unmount cleanly and exit 0. An unmount from
// outside (fusermount3 -u) stops the daemon the same way.
import { Counter, Gauge } from 'prom-client';
import { runDaemon } from '../common/daemon.js';
import { FUSE_ENV_PREFIX, fuseConfigSchema } from './config.js';
import { startMount } from './mount.js';

await runDaemon({
  role: 'fuse',
  schema: fuseConfigSchema,
  envPrefix: FUSE_ENV_PREFIX,
  nodeId: (config) => config.mountpoint,
  status: (config) => config.status,
  start: async ({ config, log, registry }) => {
    const mount = await startMount(config, log, registry);
    /** A counter that follows one of the bridge's own running totals. */
    const bridgeCounter = (name: string, help: string, total: () => number) => {
      let counted = 0;
      new Counter({
        name,
        help,
        registers: [registry],
        collect() {
          const now = total();
          this.inc(now - counted);
          counted = now;
        },
      });
    };
    bridgeCounter(
      'threefs_fuse_flushes_total',
      'FLUSH requests from the kernel (close(2) of a handle that can write)',
      () => mount.stats().flushes,
    );
    bridgeCounter(
      'threefs_fuse_flushes_answered_natively_total',
      'FLUSH requests answered without JS: no write to the inode since its last flush',
      () => mount.stats().flushesAnsweredNatively,
    );
    bridgeCounter(
      'threefs_usrbio_completion_batches_total',
      'Batches of completions the daemon posted to usrbio rings',
      () => mount.usrbio?.totals().posted ?? 0,
    );
    bridgeCounter(
      'threefs_usrbio_completion_doorbells_total',
      'Completion doorbells written to usrbio programs (only to programs waiting in wait())',
      () => mount.usrbio?.totals().doorbells ?? 0,
    );
    new Gauge({
      name: 'threefs_fuse_unflushed_inodes',
      help: 'inodes with writes that no successful flush has covered yet',
      registers: [registry],
      collect() {
        this.set(mount.stats().unflushedInodes);
      },
    });
    void mount.ended.then(() => {
      log.warn('the kernel ended the FUSE session (unmounted from outside); stopping');
      process.kill(process.pid, 'SIGTERM');
    });
    return {
      ready: { mountpoint: mount.mountpoint },
      health: () => ({
        ok: true,
        detail: { activeRequests: mount.ops.active, openFiles: mount.ops.openFiles },
      }),
      stop: () => mount.stop(),
    };
  },
});
