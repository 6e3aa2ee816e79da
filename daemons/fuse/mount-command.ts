// `threefs mount <mgmtd-address[,more]> <dir> [--cluster-id ID] [--token T] [--set key=value]...`
// mounts in the foreground until SIGTERM/SIGINT (or an unmount from outside), then unmounts and
// returns 0. Logs go to stderr as JSON (warnings and up unless THREEFS_LOG_LEVEL says more);
// every failure a user can cause prints one line saying what to do. Returns the exit code.
import { parseArgs } from 'node:util';
import pino from 'pino';
import { ConfigError, loadConfig } from '../common/config.js';
import { ThreeFsError } from '../common/errors.js';
import { createLogger } from '../common/log.js';
import { FUSE_ENV_PREFIX, fuseConfigSchema } from './config.js';
import { startMount } from './mount.js';

export const MOUNT_USAGE =
  'usage: threefs mount <mgmtd-address[,more]> <dir> [--cluster-id ID] [--token TOKEN] [--set key=value]...\n' +
  '  keys: threefs fuse daemon config (attrTimeoutS, entryTimeoutS, negativeTimeoutS, opTimeoutMs,\n' +
  '  writeBufferBytes, allowOther, ...)\n';

export async function mountCommand(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        'cluster-id': { type: 'string' },
        token: { type: 'string' },
        set: { type: 'string', multiple: true },
        help: { type: 'boolean' },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    process.stderr.write(`threefs mount: ${(err as Error).message}\n${MOUNT_USAGE}`);
    return 2;
  }
  if (parsed.values.help) {
    process.stdout.write(MOUNT_USAGE);
    return 0;
  }
  const [addresses, dir, ...extra] = parsed.positionals;
  if (!addresses || !dir || extra.length > 0) {
    process.stderr.write(`threefs mount: expected <mgmtd-address[,more]> <dir>\n${MOUNT_USAGE}`);
    return 2;
  }
  const mgmtd = addresses.split(',').filter((a) => a !== '');
  const overrides = [
    `mgmtd=${JSON.stringify(mgmtd)}`,
    `mountpoint=${dir}`,
    'status.port=0',
    ...(parsed.values['cluster-id'] ? [`clusterId=${parsed.values['cluster-id']}`] : []),
    ...(parsed.values.token ? [`token=${parsed.values.token}`] : []),
    ...(parsed.values.set ?? []),
  ];
  let config;
  try {
    config = loadConfig(fuseConfigSchema, { envPrefix: FUSE_ENV_PREFIX, overrides });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`threefs mount: ${err.message}\n`);
    return 2;
  }
  const log = createLogger({
    role: 'fuse',
    nodeId: config.mountpoint,
    level: (process.env.THREEFS_LOG_LEVEL as pino.Level | undefined) ?? 'warn',
    destination: pino.destination({ dest: 2, sync: true }),
  });
  let mount;
  try {
    mount = await startMount(config, log);
  } catch (err) {
    const message = err instanceof ThreeFsError ? err.message : String(err);
    process.stderr.write(`threefs mount: ${message}\n`);
    return 1;
  }
  process.stderr.write(`threefs: ${config.clusterId} mounted on ${mount.mountpoint}\n`);
  const why = await new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
    void mount.ended.then(() => resolve('unmounted from outside'));
  });
  try {
    await mount.stop();
  } catch (err) {
    process.stderr.write(`threefs mount: unclean unmount after ${why}: ${String(err)}\n`);
    return 1;
  }
  process.stderr.write(`threefs: unmounted ${mount.mountpoint} (${why})\n`);
  return 0;
}
