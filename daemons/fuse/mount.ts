// One FUSE mount: the cluster clients (mgmtd, routing, meta with failover, storage), the file
// API over them, the FUSE operations, and the native session. Ready when the kernel answers a
// stat of the mount point through us; stop() unmounts (lazily, so busy files never block it),
// then closes what the kernel left open and the clients.
import { stat, writeFile } from 'node:fs/promises';
import type { Registry } from 'prom-client';
import { FileApi } from '../client/file-api.js';
import { MetaClient } from '../client/meta-client.js';
import { MgmtdClient } from '../client/mgmtd-client.js';
import { regionOfDescriptor } from '../client/region-reads.js';
import { RoutingCache } from '../client/routing-cache.js';
import { StorageClient } from '../client/storage-client.js';
import { ThreeFsError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { usrbioAddon } from '../common/usrbio-native.js';
import { CallerGroups } from './caller-groups.js';
import type { FuseConfig } from './config.js';
import { errno } from './errno.js';
import { FuseOps } from './fuse-ops.js';
import { FuseOpMetrics } from './op-metrics.js';
import { checkFuseAvailable, checkMountPoint } from './mount-checks.js';
import { createNativeSession, type NativeFuseSession } from './native-fuse.js';
import { type RunningUsrbioServer, startUsrbioServer } from './usrbio-server.js';
import type { SharedSlots } from './reply-buffers.js';

export interface RunningMount {
  mountpoint: string;
  ops: FuseOps;
  /** The zero-copy ring API's listener, when enabled. */
  usrbio: RunningUsrbioServer | undefined;
  stop(): Promise<void>;
  /** Resolves when the kernel ended the session without stop() (e.g. fusermount3 -u). */
  ended: Promise<void>;
  /** The native session's counters (native-fuse.ts). */
  stats(): ReturnType<NativeFuseSession['stats']>;
}

/**
 * The kernel caps a FUSE mount's readahead at its default (128 KiB) whatever max_readahead says;
 * raising the mount's bdi setting lets sequential reads arrive as 1 MiB requests. Best effort
 * (needs root): without it reads still work, in smaller requests.
 */
async function raiseReadahead(dev: number, bytes: number, log: Logger): Promise<void> {
  const major = Math.floor(dev / 256) & 0xfff;
  const minor = (dev & 0xff) | (Math.floor(dev / 4096) & 0xfff00);
  const file = `/sys/class/bdi/${major}:${minor}/read_ahead_kb`;
  try {
    await writeFile(file, `${Math.floor(bytes / 1024)}\n`);
  } catch (err) {
    log.info(
      { err, file },
      'could not raise the readahead of the mount; reads use smaller requests',
    );
  }
}

/**
 * Reply memory for as many reads as the kernel sends at once, in a sealed memfd that storage
 * servers on this host may read straight into (docs/fuse.md, "Shared-memory reads").
 */
function sharedReplySlots(slotBytes: number, slots: number): SharedSlots {
  const { fd, data } = usrbioAddon().sharedRegion(slotBytes * slots);
  return { region: regionOfDescriptor(fd, data.length), data, slotBytes };
}

export async function startMount(
  config: FuseConfig,
  log: Logger,
  registry?: Registry,
): Promise<RunningMount> {
  await checkFuseAvailable();
  const mountpoint = await checkMountPoint(config.mountpoint);
  const token = config.token || undefined;
  const mgmtd = new MgmtdClient({
    addresses: config.mgmtd,
    clusterId: config.clusterId,
    token,
    log,
    registry,
    name: 'fuse',
    totalTimeoutMs: config.opTimeoutMs,
    attemptTimeoutMs: config.attemptTimeoutMs,
  });
  const routing = new RoutingCache(mgmtd, { refreshIntervalMs: config.routingRefreshMs, log });
  const storage = new StorageClient({
    routing,
    clusterId: config.clusterId,
    token,
    log,
    registry,
    retryTotalMs: config.opTimeoutMs,
    attemptTimeoutMs: config.attemptTimeoutMs,
  });
  const meta = new MetaClient({
    clusterId: config.clusterId,
    token,
    routing,
    mgmtd,
    attemptTimeoutMs: config.attemptTimeoutMs,
    totalTimeoutMs: config.opTimeoutMs,
    log,
    registry,
  });
  const closeClients = async () => {
    routing.stop();
    await Promise.allSettled([meta.close(), storage.close(), mgmtd.close()]);
  };
  let session: NativeFuseSession | undefined;
  try {
    await routing.refresh();
    routing.start();
    await meta.startSession();
    const api = new FileApi({
      meta,
      storage,
      log,
      writeBufferBytes: config.writeBufferBytes,
      flushDelayMs: config.flushDelayMs,
      maxInFlightWrites: config.maxInFlightWrites,
      writeBehindBytes: config.writeBehindBytes,
      lengthHintMs: config.lengthHintMs,
    });
    const ops = new FuseOps({
      api,
      groups: new CallerGroups(config.groupsCacheMs),
      log,
      attrTimeoutS: config.attrTimeoutS,
      entryTimeoutS: config.entryTimeoutS,
      negativeTimeoutS: config.negativeTimeoutS,
      maxHandles: config.maxHandles,
      sharedReplies: config.sharedMemoryReads
        ? sharedReplySlots(config.maxWrite, config.maxBackground)
        : undefined,
      metrics: registry ? new FuseOpMetrics(registry) : undefined,
    });
    let signalEnded!: () => void;
    const ended = new Promise<void>((resolve) => (signalEnded = resolve));
    ops.onEnded = () => signalEnded();
    const native = createNativeSession((batch) => ops.dispatch(batch));
    ops.attach(native);
    native.mount({
      mountpoint,
      fsname: `threefs:${config.clusterId}`.replace(/[,\\]/g, '_'),
      allowOther: config.allowOther,
      debug: config.debug,
      maxWrite: config.maxWrite,
      maxReadahead: config.maxWrite,
      maxBackground: config.maxBackground,
    });
    session = native;
    const root = await stat(mountpoint); // answered by our own getattr: the mount works
    if (root.ino !== 1)
      throw new ThreeFsError('INTERNAL', `mount point shows inode ${root.ino}, not the root (1)`);
    await raiseReadahead(root.dev, config.maxWrite, log);
    const { enabled, dir, maxSessions, ...limits } = config.usrbio;
    // Best effort, like the readahead: a mount by a user who cannot create the socket
    // directory still serves POSIX I/O, and says why the ring API is missing.
    const usrbio = enabled
      ? await startUsrbioServer({
          api,
          mountDev: root.dev,
          dir,
          maxSessions,
          limits,
          sharedMemoryReads: config.sharedMemoryReads,
          groups: new CallerGroups(config.groupsCacheMs),
          // The kernel caches a file's size for attrTimeoutS: a ring write past the end would
          // otherwise stay invisible to stat and read through the mount on this host that long.
          onFileChanged: (inode) => {
            const result = native.invalidateAttributes(inode);
            if (result !== 0 && result !== -errno.ENOENT)
              log.warn({ inode, errno: -result }, 'could not invalidate cached attributes');
          },
          log,
        }).catch((err: unknown) => {
          log.warn({ err, dir }, 'usrbio is not available on this mount');
          return undefined;
        })
      : undefined;
    let stopped = false;
    return {
      mountpoint,
      ops,
      usrbio,
      ended,
      stats: () => native.stats(),
      stop: async () => {
        if (stopped) return;
        stopped = true;
        await usrbio?.stop();
        native.unmount();
        await ops.closeAll();
        await api.close();
        await closeClients();
      },
    };
  } catch (err) {
    session?.unmount();
    await closeClients();
    throw err;
  }
}
